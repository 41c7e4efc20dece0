import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A port for a program a test starts later, or stops and starts again, on the same address.
 *
 * A port the kernel hands out for port 0 is from its ephemeral range, and so is free only until the
 * next `listen(0)` or outgoing connection of a test running beside: in CI, a collector left waiting
 * for its aggregator at such a port once shipped into another test's aggregator that had been given
 * it. So these ports come from below the ephemeral range (the kernel never hands those out by
 * itself), in a slice of their own for each vitest worker (VITEST_POOL_ID; tests of one worker run one
 * after another), checked free by binding it once.
 */
const SLICE = 1024;
const WORKERS = 8;
let next = -1;

function ephemeralLow(): number | undefined {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low - SLICE * WORKERS >= 1024 ? low : undefined;
  } catch {
    return undefined;
  }
}

async function canBind(kind: 'tcp' | 'udp', host: string, port: number): Promise<number | undefined> {
  if (kind === 'udp') {
    const s = createSocket('udp4');
    return new Promise((resolve) => {
      s.once('error', () => s.close(() => resolve(undefined)));
      s.bind(port, host, () => {
        const bound = s.address().port;
        s.close(() => resolve(bound));
      });
    });
  }
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, host, () => {
      const bound = (server.address() as AddressInfo).port;
      server.close(() => resolve(bound));
    });
  });
}

export async function restartablePort(kind: 'tcp' | 'udp' = 'tcp', host = '127.0.0.1'): Promise<number> {
  const low = ephemeralLow();
  if (low === undefined) {
    // Not Linux, or a range too low to leave room below it: the kernel's choice, with its race.
    const port = await canBind(kind, host, 0);
    if (port === undefined) throw new Error(`cannot bind a ${kind} port on ${host}`);
    return port;
  }
  const worker = (Number(process.env.VITEST_POOL_ID ?? '1') - 1 + WORKERS) % WORKERS;
  const base = low - SLICE * WORKERS + worker * SLICE;
  if (next < 0) next = Math.floor(Math.random() * SLICE);
  for (let tries = 0; tries < SLICE; tries++) {
    const port = base + (next++ % SLICE);
    if ((await canBind(kind, host, port)) !== undefined) return port;
  }
  throw new Error(`no free ${kind} port on ${host} in ${base}-${base + SLICE - 1}`);
}

import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { restartablePort } from '../helpers/free-port.js';

/** The low end of the kernel's ephemeral port range, when this is Linux. */
function ephemeralLow(): number | undefined {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return undefined;
  }
}

describe('restartablePort (test helper)', () => {
  it('gives distinct, free ports below the kernel\'s ephemeral range when there is room, so no listen(0) of a test beside can be handed one', async () => {
    const ports = [await restartablePort(), await restartablePort(), await restartablePort('udp')];
    expect(new Set(ports).size).toBe(3);
    const low = ephemeralLow();
    // 8 slices of 1024 ports below the range, above the privileged ports; a machine whose range starts
    // lower gets the kernel's choice (from the range, with the race this helper avoids elsewhere).
    const room = low !== undefined && low - 8 * 1024 >= 1024;
    for (const p of ports) {
      if (room) {
        expect(p).toBeLessThan(low as number);
        expect(p).toBeGreaterThanOrEqual(1024);
      } else {
        expect(p).toBeGreaterThan(0);
      }
    }
    // Free right now: a program can listen on it.
    const server = createServer();
    await new Promise<void>((r) => server.listen(ports[0], '127.0.0.1', r));
    await new Promise<void>((r) => server.close(() => r()));
  });
});

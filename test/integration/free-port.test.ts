import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { restartablePort } from '../helpers/free-port.js';

describe('restartablePort (test helper)', () => {
  it('gives distinct ports below the kernel\'s ephemeral range, so no listen(0) of a test beside can be handed one', async () => {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports = [await restartablePort(), await restartablePort(), await restartablePort('udp')];
    expect(new Set(ports).size).toBe(3);
    for (const p of ports) {
      expect(p).toBeLessThan(low);
      expect(p).toBeGreaterThanOrEqual(1024);
    }
    // Free right now: a program can listen on it.
    const server = createServer();
    await new Promise<void>((r) => server.listen(ports[0], '127.0.0.1', r));
    await new Promise<void>((r) => server.close(() => r()));
  });
});

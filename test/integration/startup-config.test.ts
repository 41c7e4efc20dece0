import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAggregator, startAggregator } from '../helpers/aggregator-process.js';
import { runCollector } from '../helpers/collector-process.js';

/**
 * Issue 11 items 2 and 4, with the real programs: a mistyped variable, a taken port, an address no
 * interface has, a data directory under a file or under /proc: each is ONE line on stderr that names
 * the variable, exit 2, no grpc-js noise and no stack trace (JSON log records before it are allowed).
 */
function oneProblemLine(stderr: string): string {
  const plain = stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
  expect(plain, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toContain('No address added');
  return plain[0] as string;
}

describe('start-up errors name the variable and exit 2 (real processes)', () => {
  let dir: string;
  let taken: Server;
  let takenPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-startup-'));
    await writeFile(join(dir, 'a-file'), 'not a directory');
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    takenPort = (taken.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => taken.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const aggregatorCases: Array<[string, () => Record<string, string>, RegExp]> = [
    [
      'a mistyped variable (the blackhole would have run)',
      () => ({ AGGREGATOR_FILE_CONFIG: `{"path":"${join(dir, 'out.log')}"}` }),
      /AGGREGATOR_FILE_CONFIG: unknown variable; did you mean AGGREGATOR_FILE_CONFIGURATION\?/,
    ],
    ['a taken gRPC port', () => ({ AGGREGATOR_LISTEN_ADDRESS: `127.0.0.1:${takenPort}` }), /AGGREGATOR_LISTEN_ADDRESS: cannot listen on 127\.0\.0\.1:\d+: .*\(EADDRINUSE\)/],
    ['a taken metrics port', () => ({ AGGREGATOR_METRICS_ADDRESS: `127.0.0.1:${takenPort}` }), /AGGREGATOR_METRICS_ADDRESS: .*EADDRINUSE/],
    [
      'an address no interface has',
      () => ({ AGGREGATOR_LISTEN_ADDRESS: '192.0.2.1:0' }),
      /AGGREGATOR_LISTEN_ADDRESS: cannot listen on 192\.0\.2\.1:0: no interface of this host has that address \(EADDRNOTAVAIL\)/,
    ],
    ['a spool path under a file', () => ({ AGGREGATOR_SPOOL_DIR: join(dir, 'a-file', 'spool') }), /AGGREGATOR_SPOOL_DIR: .*a-file.*\(ENOTDIR\)/],
    // Node's recursive mkdir loops forever under /proc (100 % CPU, SIGTERM never handled).
    ['a spool path under /proc', () => ({ AGGREGATOR_SPOOL_DIR: '/proc/mega-collector-test/spool' }), /AGGREGATOR_SPOOL_DIR: cannot create directory "\/proc\/mega-collector-test" \(ENOENT\)/],
  ];

  it.each(aggregatorCases)('aggregator: %s', async (_name, env, pattern) => {
    const res = await runAggregator({ AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), ...env() }, [], 15_000);
    expect(res.code).toBe(2);
    expect(oneProblemLine(res.stderr)).toMatch(pattern);
  });

  const collectorCases: Array<[string, () => Record<string, string>, RegExp]> = [
    ['a mistyped variable', () => ({ COLLECTOR_BUFFER_MAX_BYTE: '1MiB' }), /COLLECTOR_BUFFER_MAX_BYTE: unknown variable; did you mean COLLECTOR_BUFFER_MAX_BYTES\?/],
    ['an IPv6 zone id in the remote address', () => ({ COLLECTOR_REMOTE_ADDRESS: '[fe80::1%eth0]:8000' }), /COLLECTOR_REMOTE_ADDRESS: .*zone id/],
    ['a state directory under a file', () => ({ COLLECTOR_STATE_DIR: join(dir, 'a-file', 'state') }), /COLLECTOR_STATE_DIR: .*\(ENOTDIR\)/],
    ['a state directory under /proc', () => ({ COLLECTOR_STATE_DIR: '/proc/mega-collector-test/state' }), /COLLECTOR_STATE_DIR: cannot create directory/],
    ['a taken metrics port', () => ({ COLLECTOR_METRICS_ADDRESS: `127.0.0.1:${takenPort}` }), /COLLECTOR_METRICS_ADDRESS: .*EADDRINUSE/],
  ];

  it.each(collectorCases)('collector: %s', async (_name, env, pattern) => {
    const res = await runCollector({
      COLLECTOR_REMOTE_ADDRESS: '127.0.0.1:1',
      COLLECTOR_FILES: join(dir, 'logs', '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
      ...env(),
    });
    expect(res.code).toBe(2);
    expect(oneProblemLine(res.stderr)).toMatch(pattern);
  });

  it('TLS material while TLS is off is a warning naming the variables, and the aggregator runs', async () => {
    const agg = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool-warn'),
        AGGREGATOR_TLS_CERTIFICATE: '/run/secrets/server.crt',
        AGGREGATOR_TLS_KEY: '/run/secrets/server.key',
      },
    });
    try {
      const warning = await agg.waitForLog((r) => r.level === 40 && String(r.msg).includes('AGGREGATOR_TLS is off'), 5000);
      expect(warning.msg).toMatch(/^AGGREGATOR_TLS_CERTIFICATE, AGGREGATOR_TLS_KEY: set while AGGREGATOR_TLS is off/);
    } finally {
      expect(await agg.stop()).toBe(0);
    }
  });
});

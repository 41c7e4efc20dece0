import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAggregator } from '../helpers/aggregator-process.js';

/** Bad configuration: the real program exits non-zero with ONE line on stderr naming the variable. */
describe('aggregator: invalid configuration (real process)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-agg-config-'));
    await writeFile(join(dir, 'not-a-pem.txt'), 'hello');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['bad duration', { AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '10 parsecs' }, /AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY/],
    ['duration without unit', { AGGREGATOR_EMIT_RETRY_MAX_DELAY: '30' }, /AGGREGATOR_EMIT_RETRY_MAX_DELAY.*missing unit/],
    [
      'two emitters',
      { AGGREGATOR_TEXT_CONFIGURATION: '1', AGGREGATOR_FILE_CONFIGURATION: '{"path":"/tmp/x.log"}' },
      /AGGREGATOR_FILE_CONFIGURATION, AGGREGATOR_TEXT_CONFIGURATION: more than one emitter/,
    ],
    ['TLS without material', { AGGREGATOR_TLS: '1' }, /AGGREGATOR_TLS_CERTIFICATE, AGGREGATOR_TLS_KEY, AGGREGATOR_TLS_CA_CERTIFICATE/],
    ['TLS material unreadable', { AGGREGATOR_TLS: 'true', AGGREGATOR_TLS_CERTIFICATE: '/nonexistent/cert.pem' }, /AGGREGATOR_TLS_CERTIFICATE: cannot read/],
    [
      'TLS on: each unreadable path named',
      { AGGREGATOR_TLS: '1', AGGREGATOR_TLS_CERTIFICATE: '/nonexistent/server.crt', AGGREGATOR_TLS_KEY: '/nonexistent/server.key', AGGREGATOR_TLS_CA_CERTIFICATE: '/nonexistent/ca.crt' },
      /AGGREGATOR_TLS_CERTIFICATE: cannot read certificate file "\/nonexistent\/server\.crt" \(ENOENT\).*AGGREGATOR_TLS_KEY: cannot read private key file.*AGGREGATOR_TLS_CA_CERTIFICATE: cannot read CA certificate file/,
    ],
    ['bad JSON', { AGGREGATOR_FILE_CONFIGURATION: '{"path": ' }, /AGGREGATOR_FILE_CONFIGURATION: not valid JSON/],
    ['JSON of the wrong shape', { AGGREGATOR_NOTIFY_CONFIGURATION: '{"integration_key": "k"}' }, /AGGREGATOR_NOTIFY_CONFIGURATION: .*incident_key/],
    ['bad byte size', { AGGREGATOR_SPOOL_MAX_BYTES: '1 parsec' }, /AGGREGATOR_SPOOL_MAX_BYTES/],
    ['bad address', { AGGREGATOR_LISTEN_ADDRESS: 'localhost' }, /AGGREGATOR_LISTEN_ADDRESS/],
    ['bad boolean', { AGGREGATOR_TLS: 'maybe' }, /AGGREGATOR_TLS:/],
  ];

  it.each(cases)('%s', async (_name, env, pattern) => {
    const res = await runAggregator({ AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), ...env });
    expect(res.code).not.toBe(0);
    const lines = res.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
  });

  it('a PEM file without a PEM block names the variable', async () => {
    const res = await runAggregator({
      AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
      AGGREGATOR_TLS: '1',
      AGGREGATOR_TLS_CA_CERTIFICATE: join(dir, 'not-a-pem.txt'),
    });
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/AGGREGATOR_TLS_CA_CERTIFICATE: .*holds no PEM block/);
  });

  it('--help lists every variable; --version prints the version', async () => {
    const help = await runAggregator({}, ['--help']);
    expect(help.code).toBe(0);
    for (const v of ['AGGREGATOR_LISTEN_ADDRESS', 'AGGREGATOR_SPOOL_MAX_BYTES', 'AGGREGATOR_NOTIFY_CONFIGURATION', 'LOG_LEVEL', 'spool replay-dead-letters']) {
      expect(help.stdout).toContain(v);
    }
    const version = await runAggregator({}, ['--version']);
    expect(version.stdout).toMatch(/^mega-aggregator \d+\.\d+\.\d+/);
  });
});

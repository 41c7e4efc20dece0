import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAggregator, startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { generateTestCerts } from '../helpers/certs.js';
import type { TestCerts } from '../helpers/certs.js';
import { runCollector } from '../helpers/collector-process.js';

/** Issue 11 item 5: `mega-aggregator validate` and `mega-collector validate`, run as real programs. */
describe('validate (real processes)', () => {
  let dir: string;
  let certs: TestCerts;
  let agg: AggregatorProcess;
  let taken: Server;
  let takenPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-validate-'));
    await mkdir(join(dir, 'logs'));
    await writeFile(join(dir, 'logs', 'app.log'), 'a line\n');
    certs = await generateTestCerts();
    agg = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'running-spool'),
        AGGREGATOR_TLS: '1',
        AGGREGATOR_TLS_CERTIFICATE: certs.server.certPath,
        AGGREGATOR_TLS_KEY: certs.server.keyPath,
        AGGREGATOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
      },
    });
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    takenPort = (taken.address() as { port: number }).port;
  });

  afterAll(async () => {
    await agg?.kill();
    await new Promise<void>((resolve) => taken.close(() => resolve()));
    await certs?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const aggregatorEnv = (): Record<string, string> => ({
    AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
    AGGREGATOR_TLS: '1',
    AGGREGATOR_TLS_CERTIFICATE: certs.server.certPath,
    // PEM text: must never be printed.
    AGGREGATOR_TLS_KEY: certs.server.key.toString('utf8'),
    AGGREGATOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
    AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: join(dir, 'out', 'shipped.log') }),
    AGGREGATOR_NOTIFY_CONFIGURATION: JSON.stringify({ integration_key: 'very-secret-routing-key', incident_key: 'k', identifier: 'i' }),
  });

  it('mega-aggregator validate: checks pass, exit 0, effective configuration printed with secrets redacted', async () => {
    await mkdir(join(dir, 'out'), { recursive: true });
    const res = await runAggregator(aggregatorEnv(), ['validate']);
    expect(res.stdout).toMatch(/ok {4}AGGREGATOR_SPOOL_DIR: .*takes files/);
    expect(res.stdout).toMatch(/ok {4}AGGREGATOR_LISTEN_ADDRESS: 127\.0\.0\.1:0 can be bound/);
    expect(res.stdout).toMatch(/ok {4}AGGREGATOR_FILE_CONFIGURATION: .*shipped\.log can be written/);
    expect(res.stdout).toMatch(/ok {4}AGGREGATOR_TLS_KEY: matches the certificate in AGGREGATOR_TLS_CERTIFICATE/);
    // The test certificates live two days: a warning, not a failure.
    expect(res.stdout).toMatch(/warn {2}AGGREGATOR_TLS_CERTIFICATE: "CN=localhost" expires soon, on /);
    expect(res.stdout).toMatch(/AGGREGATOR_TLS_KEY +<redacted: PEM private key>/);
    expect(res.stdout).toMatch(/AGGREGATOR_NOTIFY_CONFIGURATION +\{"integration_key":"<redacted>","incident_key":"k"/);
    expect(res.stdout).toMatch(/AGGREGATOR_MAX_BATCH_SIZE +1000 {2}\(default\)/);
    expect(res.stdout).not.toContain('very-secret-routing-key');
    expect(res.stdout).not.toContain('PRIVATE KEY-----');
    expect(res.stdout).toContain('Validated.');
    expect(res.code).toBe(0);
  });

  it('mega-aggregator validate: a taken port, a missing output directory, the blackhole: exit 2 with each named', async () => {
    const env = { ...aggregatorEnv(), AGGREGATOR_LISTEN_ADDRESS: `127.0.0.1:${takenPort}`, AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: join(dir, 'nowhere', 'x.log') }) };
    const res = await runAggregator(env, ['validate']);
    expect(res.code).toBe(2);
    expect(res.stdout).toMatch(new RegExp(`FAIL {2}AGGREGATOR_LISTEN_ADDRESS: cannot listen on 127\\.0\\.0\\.1:${takenPort} \\(EADDRINUSE\\)`));
    expect(res.stdout).toMatch(/FAIL {2}AGGREGATOR_FILE_CONFIGURATION: .*nowhere.*ENOENT/);
    expect(res.stdout).toContain('Validation failed.');
    const blackhole = await runAggregator({ AGGREGATOR_SPOOL_DIR: join(dir, 'spool') }, ['validate']);
    expect(blackhole.stdout).toMatch(/warn {2}emitter: none configured: batches go to the blackhole/);
    expect(blackhole.code).toBe(0);
  });

  it('mega-aggregator validate: an invalid configuration is one line naming the variable, exit 2', async () => {
    const res = await runAggregator({ AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), AGGREGATOR_FILE_CONFIG: '{}' }, ['validate']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/AGGREGATOR_FILE_CONFIG: unknown variable; did you mean AGGREGATOR_FILE_CONFIGURATION\?/);
  });

  const collectorEnv = (client: { certPath: string; keyPath: string }): Record<string, string> => ({
    COLLECTOR_REMOTE_ADDRESS: `localhost:${agg.grpcPort}`,
    COLLECTOR_FILES: join(dir, 'logs', '*.log'),
    COLLECTOR_STATE_DIR: join(dir, 'state'),
    COLLECTOR_TLS: '1',
    COLLECTOR_TLS_CERTIFICATE: client.certPath,
    COLLECTOR_TLS_KEY: client.keyPath,
    COLLECTOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
  });

  it('mega-collector validate: the aggregator answers its health check over the configured mTLS, exit 0', async () => {
    const res = await runCollector(collectorEnv(certs.client), ['validate']);
    expect(res.stdout).toMatch(/ok {4}COLLECTOR_FILES: 1 matching file, all readable/);
    expect(res.stdout).toMatch(/ok {4}COLLECTOR_STATE_DIR: /);
    expect(res.stdout).toMatch(/ok {4}COLLECTOR_REMOTE_ADDRESS: the aggregator at localhost:\d+ answers its health check over TLS: SERVING/);
    expect(res.stdout).toMatch(/COLLECTOR_TLS_KEY +\/.*client\.key/);
    expect(res.code).toBe(0);
  });

  it('mega-collector validate: a client certificate the aggregator does not trust fails the health check, exit 2', async () => {
    const res = await runCollector(collectorEnv(certs.otherClient), ['validate']);
    expect(res.stdout).toMatch(/FAIL {2}COLLECTOR_REMOTE_ADDRESS: no health answer from localhost:\d+ over TLS/);
    expect(res.code).toBe(2);
    expect(await agg.metric('mega_aggregator_tls_handshake_failures_total', { reason: 'bad_client_certificate' })).toBeGreaterThanOrEqual(1);
  });

  it('mega-collector validate --no-network does not contact the aggregator', async () => {
    const env = { ...collectorEnv(certs.client), COLLECTOR_REMOTE_ADDRESS: '127.0.0.1:1' };
    const res = await runCollector(env, ['validate', '--no-network']);
    expect(res.stdout).toMatch(/warn {2}COLLECTOR_REMOTE_ADDRESS: 127\.0\.0\.1:1 not contacted \(--no-network\)/);
    expect(res.code).toBe(0);
    const contacted = await runCollector(env, ['validate']);
    expect(contacted.stdout).toMatch(/FAIL {2}COLLECTOR_REMOTE_ADDRESS: no health answer from 127\.0\.0\.1:1/);
    expect(contacted.code).toBe(2);
  });
});

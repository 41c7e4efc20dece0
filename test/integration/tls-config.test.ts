import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAggregator } from '../helpers/aggregator-process.js';
import { generateTestCerts } from '../helpers/certs.js';
import type { TestCerts } from '../helpers/certs.js';
import { runCollector } from '../helpers/collector-process.js';

/**
 * Issue 8 case 9: an aggregator whose key did not match its certificate started, answered /healthz
 * 200 and failed every handshake. Both programs now refuse such material at start: exit 2, one line
 * naming both variables. (Refused handshakes at run time: aggregator-tls.test.ts.)
 */
describe('TLS key/certificate mismatch at start (real processes)', () => {
  let certs: TestCerts;

  beforeAll(async () => {
    certs = await generateTestCerts();
  });

  afterAll(async () => {
    await certs?.cleanup();
  });

  function onlyLine(stderr: string): string {
    const lines = stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    return lines[0] as string;
  }

  it('the aggregator refuses a key that does not match its certificate', async () => {
    const res = await runAggregator({
      AGGREGATOR_SPOOL_DIR: `${certs.dir}/spool`,
      AGGREGATOR_TLS: '1',
      AGGREGATOR_TLS_CERTIFICATE: certs.server.certPath,
      AGGREGATOR_TLS_KEY: certs.client.keyPath,
      AGGREGATOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
    });
    expect(res.code).toBe(2);
    expect(onlyLine(res.stderr)).toMatch(/AGGREGATOR_TLS_KEY: the private key does not match the certificate in AGGREGATOR_TLS_CERTIFICATE/);
  });

  it('the aggregator refuses a CA that holds no certificate', async () => {
    const res = await runAggregator({
      AGGREGATOR_SPOOL_DIR: `${certs.dir}/spool`,
      AGGREGATOR_TLS: '1',
      AGGREGATOR_TLS_CERTIFICATE: certs.server.certPath,
      AGGREGATOR_TLS_KEY: certs.server.keyPath,
      AGGREGATOR_TLS_CA_CERTIFICATE: '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----',
    });
    expect(res.code).toBe(2);
    expect(onlyLine(res.stderr)).toMatch(/AGGREGATOR_TLS_CA_CERTIFICATE: not a valid X\.509 certificate/);
  });

  it('the collector refuses a client key that does not match its certificate', async () => {
    const res = await runCollector({
      COLLECTOR_REMOTE_ADDRESS: '127.0.0.1:1',
      COLLECTOR_FILES: `${certs.dir}/*.log`,
      COLLECTOR_STATE_DIR: `${certs.dir}/collector`,
      COLLECTOR_TLS: '1',
      COLLECTOR_TLS_CERTIFICATE: certs.client.certPath,
      COLLECTOR_TLS_KEY: certs.otherClient.keyPath,
      COLLECTOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
    });
    expect(res.code).toBe(2);
    expect(onlyLine(res.stderr)).toMatch(/COLLECTOR_TLS_KEY: the private key does not match the certificate in COLLECTOR_TLS_CERTIFICATE/);
  });
});

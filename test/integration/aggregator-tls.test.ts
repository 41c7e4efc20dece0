import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { generateTestCerts } from '../helpers/certs.js';
import type { TestCerts } from '../helpers/certs.js';
import { buildEntries, createIngestClient } from '../helpers/ingest-client.js';

describe('aggregator: mTLS (real process)', () => {
  let dir: string;
  let certs: TestCerts;
  let agg: AggregatorProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-agg-tls-'));
    certs = await generateTestCerts();
    agg = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_TLS: '1',
        // One as a path, one as PEM text: both forms are accepted.
        AGGREGATOR_TLS_CERTIFICATE: certs.server.certPath,
        AGGREGATOR_TLS_KEY: certs.server.key.toString('utf8'),
        AGGREGATOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
      },
    });
  });

  afterAll(async () => {
    await agg?.kill();
    await certs?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  async function shipOne(tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<string> {
    const client = createIngestClient(agg.address, tls);
    try {
      const stream = client.open();
      const { entries, entryCount } = buildEntries([{ data: Buffer.from('secret line') }]);
      stream.send({ sequence: 1, entries, entryCount });
      try {
        const [ack] = await stream.waitForAcks(1, 10_000);
        return ack?.code ?? 'none';
      } catch (err) {
        return `refused: ${(err as Error).message}`;
      }
    } finally {
      client.close();
    }
  }

  // Issue 8 case 9: refused handshakes are logged (rate-limited, with the peer and a reason) and counted.
  const refusals = (reason?: string): Promise<number> =>
    agg.metric('mega_aggregator_tls_handshake_failures_total', reason === undefined ? undefined : { reason });
  const refusedLog =
    (reason: string) =>
    (r: Record<string, unknown>): boolean =>
      r.msg === 'TLS handshake refused' && r.reason === reason && typeof r.peer === 'string' && /^127\.0\.0\.1:\d+$/.test(r.peer);

  it('exports every handshake failure reason at zero before the first failure', async () => {
    const body = (await agg.http('/metrics')).body;
    for (const reason of ['no_client_certificate', 'bad_client_certificate', 'not_tls', 'protocol', 'timeout', 'aborted']) {
      expect(body).toContain(`mega_aggregator_tls_handshake_failures_total{reason="${reason}"} 0`);
    }
  });

  it('accepts a client whose certificate the CA signed (and counts no refusal)', async () => {
    expect(await shipOne({ ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key })).toBe('OK');
    expect(await agg.metric('mega_aggregator_entries_acked_total')).toBe(1);
    expect(await refusals()).toBe(0);
  });

  it('refuses a client without a certificate, logs and counts it', async () => {
    expect(await shipOne({ ca: certs.ca.cert })).toMatch(/^refused: /);
    await agg.waitForLog(refusedLog('no_client_certificate'), 5000);
    expect(await refusals('no_client_certificate')).toBeGreaterThanOrEqual(1);
  });

  it('refuses a client whose certificate another CA signed, logs and counts it', async () => {
    expect(await shipOne({ ca: certs.ca.cert, cert: certs.otherClient.cert, key: certs.otherClient.key })).toMatch(/^refused: /);
    expect(await agg.metric('mega_aggregator_entries_acked_total')).toBe(1);
    await agg.waitForLog(refusedLog('bad_client_certificate'), 5000);
    expect(await refusals('bad_client_certificate')).toBeGreaterThanOrEqual(1);
  });

  it('refuses a plaintext client, logs and counts it', async () => {
    const client = createIngestClient(agg.address);
    const stream = client.open();
    const { entries, entryCount } = buildEntries([{ data: Buffer.from('plain') }]);
    stream.send({ sequence: 1, entries, entryCount });
    await expect(stream.waitForAcks(1, 10_000)).rejects.toThrow();
    client.close();
    await agg.waitForLog(refusedLog('not_tls'), 5000);
    expect(await refusals('not_tls')).toBeGreaterThanOrEqual(1);
  });

  it('counts a flood of refused handshakes in full but logs it at a bounded rate', async () => {
    const logged = (): number => agg.logs.filter((l) => l.includes('"TLS handshake refused"')).length;
    const loggedBefore = logged();
    const before = await refusals('not_tls');
    const flood = 40;
    await Promise.all(
      Array.from(
        { length: flood },
        () =>
          new Promise<void>((resolve) => {
            const socket = netConnect(agg.grpcPort, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
            socket.on('error', () => resolve());
            socket.on('close', () => resolve());
          }),
      ),
    );
    await expect.poll(() => refusals('not_tls'), { timeout: 5000 }).toBe(before + flood);
    // At most 5 records per 10 s window (the flood may touch two windows).
    expect(logged() - loggedBefore).toBeGreaterThanOrEqual(1);
    expect(logged() - loggedBefore).toBeLessThanOrEqual(10);
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
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

  it('accepts a client whose certificate the CA signed', async () => {
    expect(await shipOne({ ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key })).toBe('OK');
    expect(await agg.metric('mega_aggregator_entries_acked_total')).toBe(1);
  });

  it('refuses a client without a certificate', async () => {
    expect(await shipOne({ ca: certs.ca.cert })).toMatch(/^refused: /);
  });

  it('refuses a client whose certificate another CA signed', async () => {
    expect(await shipOne({ ca: certs.ca.cert, cert: certs.otherClient.cert, key: certs.otherClient.key })).toMatch(/^refused: /);
    expect(await agg.metric('mega_aggregator_entries_acked_total')).toBe(1);
  });

  it('refuses a plaintext client', async () => {
    const client = createIngestClient(agg.address);
    const stream = client.open();
    const { entries, entryCount } = buildEntries([{ data: Buffer.from('plain') }]);
    stream.send({ sequence: 1, entries, entryCount });
    await expect(stream.waitForAcks(1, 10_000)).rejects.toThrow();
    client.close();
  });
});

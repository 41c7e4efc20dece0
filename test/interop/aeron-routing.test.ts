import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freeUdpPort } from '../helpers/aeron-pipeline.js';
import { waitFor } from '../helpers/wait-for.js';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { buildEntries, createIngestClient } from '../helpers/ingest-client.js';
import { startMediaDriver, startSubscriber } from './aeron-driver.js';
import { pendingEntries as pending, runCleanups } from './interop-harness.js';
import type { Cleanups } from './interop-harness.js';

/**
 * Several tag-routed publications (AGGREGATOR_AERON_CONFIGURATION as a list), as Telegraf's several
 * `[[outputs.aeron_publisher]]` blocks with tagpass/tagdrop, into one real media driver with a
 * basic_subscriber per stream: each gets exactly the entries its filters pass, once and in order;
 * entries no publication takes are counted; every batch is confirmed by every publication that took
 * entries of it.
 */
const N = 1500;

/** Ships N entries `<prefix>-<n>` from one host and file, in chunks of 250. */
async function ship(agg: AggregatorProcess, prefix: string, host: string, path: string): Promise<void> {
  const client = createIngestClient(agg.address);
  const stream = client.open();
  let sequence = 0;
  for (let at = 0; at < N; at += 250) {
    const lines = Array.from({ length: 250 }, (_, i) => ({ data: Buffer.from(`${prefix}-${at + i}`), path }));
    const { entries, entryCount } = buildEntries(lines, { collectorId: `collector-${host}`, tags: [{ key: 'host', value: host }] });
    stream.send({ sequence: ++sequence, entries, entryCount });
  }
  const acks = await stream.waitForAcks(sequence);
  await stream.finish();
  client.close();
  expect(acks.every((a) => a.code === 'OK')).toBe(true);
}

const numbered = (prefix: string): string[] => Array.from({ length: N }, (_, i) => `${prefix}-${i}`);

describe('Aeron interop: several tag-routed publications', () => {
  const cleanups: Cleanups = [];
  afterEach(() => runCleanups(cleanups));

  it('web entries to stream 41, every /var/log entry but db-2\'s to stream 42 as JSON; db-2 and the rest go nowhere, counted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mc-interop-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const driver = await startMediaDriver();
    cleanups.push(() => driver.stop());
    const ports = [await freeUdpPort(), await freeUdpPort()];
    const seen: string[][] = [[], []];
    for (let i = 0; i < 2; i++) {
      const s = await startSubscriber(driver, `aeron:udp?endpoint=127.0.0.1:${ports[i]}`, 41 + i, seen[i]);
      cleanups.push(() => s.stop('SIGKILL'));
    }
    const agg = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '20ms',
        AGGREGATOR_MAX_BATCH_SIZE: '300',
        AGGREGATOR_AERON_CONFIGURATION: JSON.stringify([
          { channel: `aeron:udp?endpoint=127.0.0.1:${ports[0]}|term-length=1m`, stream_id: 41, tagpass: { host: ['web-*'] } },
          { channel: `aeron:udp?endpoint=127.0.0.1:${ports[1]}|term-length=1m`, stream_id: 42, data_format: 'json', tagpass: { path: ['/var/log/**'] }, tagdrop: { host: ['db-2'] } },
        ]),
      },
    });
    cleanups.push(() => agg.kill());
    await ship(agg, 'web', 'web-1', '/var/log/nginx/access.log');
    await ship(agg, 'db1', 'db-1', '/var/log/postgres/pg.log');
    await ship(agg, 'db2', 'db-2', '/var/log/postgres/pg.log');
    await ship(agg, 'tmp', 'cache-1', '/tmp/scratch.log');
    await waitFor(() => (seen[0] as string[]).length >= N && (seen[1] as string[]).length >= 2 * N, { timeoutMs: 60_000, what: 'both subscribers have their entries' });
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    expect(seen[0]).toEqual(numbered('web'));
    const json = (seen[1] as string[]).map((s) => (JSON.parse(s) as { line: string; tags: Record<string, string> }));
    expect(json.map((e) => e.line)).toEqual([...numbered('web'), ...numbered('db1')]);
    expect(await agg.metric('mega_aggregator_aeron_entries_unrouted_total')).toBe(2 * N);
    // Both publications' metrics, each under its own channel and stream id.
    expect(await agg.metric('mega_aggregator_aeron_messages_sent_total', { stream_id: '41' })).toBe(N);
    expect(await agg.metric('mega_aggregator_aeron_messages_sent_total', { stream_id: '42' })).toBe(2 * N);
    expect(await agg.stop()).toBe(0);
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { countEntries, entryText, freeUdpPort, shipEntries } from '../helpers/aeron-pipeline.js';
import { startAggregator } from '../helpers/aggregator-process.js';
import { startMediaDriver, startSubscriber } from './aeron-driver.js';
import type { MediaDriver } from './aeron-driver.js';
import { waitFor } from '../helpers/wait-for.js';
import { STREAM, interopPipeline, pendingEntries as pending, runCleanups } from './interop-harness.js';
import type { Cleanups } from './interop-harness.js';

/**
 * The aggregator's Aeron emitter against the real C media driver with the C `basic_subscriber`:
 * every entry arrives, and the spool counts a batch as delivered only once the driver's status
 * messages say its subscriber consumed it, so the aggregator can die (kill -9) or stop (SIGTERM) while
 * the subscriber is dead or stuck and lose nothing.
 */
describe('Aeron interop: aggregator → aeronmd → basic_subscriber', () => {
  const cleanups: Cleanups = [];
  afterEach(() => runCleanups(cleanups));
  const setup = (driverEnv: Record<string, string> = {}, channelExtra = '|term-length=1m', host = '127.0.0.1') => interopPipeline(cleanups, { driverEnv, channelExtra, host });

  it('delivers every entry once and in order, fragmented ones included, and confirms every batch from the driver\'s status messages', async () => {
    const t = await setup();
    const payloads: string[] = [];
    await t.subscribe(payloads);
    const agg = await t.start();
    const total = 5000;
    await shipEntries(agg, 0, total, 50);
    await waitFor(() => payloads.length >= total, { timeoutMs: 60_000, what: 'every entry at basic_subscriber' });
    expect(countEntries(payloads, total, 50)).toEqual({ lost: 0, duplicated: 0, changed: 0 });
    expect(payloads).toEqual(Array.from({ length: total }, (_, i) => entryText(i, 50)));
    // The tail of the stream is confirmed too (the publication pads past the driver's SM threshold).
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    expect(await agg.stop()).toBe(0);
  });

  it('a channel as Aeron\'s samples write it (localhost) with init-term-id, linger, interface and socket buffers', async () => {
    const t = await setup({}, '|term-length=1m|init-term-id=2147483645|linger=1s|interface=127.0.0.1|so-sndbuf=256k|so-rcvbuf=128k|sparse=true', 'localhost');
    const payloads: string[] = [];
    const sub = await t.subscribe(payloads);
    const agg = await t.start();
    // Enough to cross several 1 MiB terms, so the term id wraps past INT32_MAX from init-term-id.
    await shipEntries(agg, 0, 3000, 3);
    await waitFor(() => payloads.length >= 3000, { timeoutMs: 60_000, what: 'every entry at basic_subscriber' });
    expect(countEntries(payloads, 3000, 3)).toEqual({ lost: 0, duplicated: 0, changed: 0 });
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    expect(sub.images.some((line) => line.startsWith('Available image'))).toBe(true);
    expect(await agg.stop()).toBe(0);
  });

  it('multicast (interface=, ttl=): two media drivers\' subscribers both get every entry; a batch is confirmed once both consumed it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mc-interop-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const drivers = [await startMediaDriver(), await startMediaDriver()];
    for (const d of drivers) cleanups.push(() => d.stop());
    const port = await freeUdpPort();
    const channel = `aeron:udp?endpoint=224.0.1.1:${port}|interface=127.0.0.1`;
    const seen: string[][] = [[], []];
    for (let i = 0; i < 2; i++) {
      const s = await startSubscriber(drivers[i] as MediaDriver, channel, STREAM, seen[i]);
      cleanups.push(() => s.stop('SIGKILL'));
    }
    const agg = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '20ms',
        AGGREGATOR_AERON_CONFIGURATION: JSON.stringify({ channel: `${channel}|ttl=1|term-length=1m`, stream_id: STREAM }),
      },
    });
    cleanups.push(() => agg.kill());
    await shipEntries(agg, 0, 3000, 100);
    await waitFor(() => seen.every((p) => p.length >= 3000), { timeoutMs: 60_000, what: 'every entry at both subscribers' });
    for (const p of seen) expect(countEntries(p, 3000, 100)).toEqual({ lost: 0, duplicated: 0, changed: 0 });
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    expect(await agg.stop()).toBe(0);
  });

  it('kill -9 of the aggregator while its subscriber is dead and not yet noticed: lost = 0 after restarts', async () => {
    const t = await setup();
    const payloads: string[] = [];
    const first = await t.subscribe(payloads);
    let agg = await t.start();
    await shipEntries(agg, 0, 1000);
    await waitFor(async () => payloads.length >= 1000 && (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'the first entries confirmed' });
    await first.stop('SIGKILL');
    await shipEntries(agg, 1000, 3000);
    await waitFor(async () => (await agg.metric('mega_aggregator_entries_emitted_total')) >= 4000, { timeoutMs: 30_000, what: 'the rest emitted' });
    await new Promise((r) => setTimeout(r, 500));
    // Offered into the publication, consumed by nobody: still pending in the spool.
    expect(await pending(agg)).toBe(3000);
    await agg.kill();

    await t.subscribe(payloads);
    agg = await t.start();
    await waitFor(() => countEntries(payloads, 4000).lost === 0, { timeoutMs: 60_000, what: 'every entry at a subscriber' });
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    const c = countEntries(payloads, 4000);
    expect(c).toMatchObject({ lost: 0, changed: 0 });
  });

  it('SIGTERM of the aggregator while its subscriber is stuck: the unconsumed batches stay in the spool and a restart delivers them', async () => {
    const t = await setup();
    const payloads: string[] = [];
    const first = await t.subscribe(payloads);
    let agg = await t.start();
    await shipEntries(agg, 0, 500);
    await waitFor(async () => payloads.length >= 500 && (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'the first entries confirmed' });
    first.child.kill('SIGSTOP');
    await shipEntries(agg, 500, 20_000);
    await waitFor(async () => (await agg.metric('mega_aggregator_entries_emitted_total')) > 1000, { timeoutMs: 30_000, what: 'some of the rest emitted' });
    expect(await agg.stop()).toBe(0);
    const stopped = await agg.waitForLog((r) => r.msg === 'stopped');
    expect(stopped.pendingInSpool).toBeGreaterThan(0);

    first.child.kill('SIGCONT');
    agg = await t.start();
    await waitFor(() => countEntries(payloads, 20_500).lost === 0, { timeoutMs: 90_000, what: 'every entry at the subscriber' });
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    expect(countEntries(payloads, 20_500)).toMatchObject({ lost: 0, changed: 0 });
  });
});

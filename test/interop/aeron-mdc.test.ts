import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { countEntries, entryText, freeUdpPort, shipEntries } from '../helpers/aeron-pipeline.js';
import { waitFor } from '../helpers/wait-for.js';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { startMediaDriver, startSubscriber } from './aeron-driver.js';
import type { MediaDriver, Subscriber } from './aeron-driver.js';
import { STREAM, pendingEntries as pending, runCleanups } from './interop-harness.js';
import type { Cleanups } from './interop-harness.js';

/**
 * Multi-destination-cast against two real media drivers, each with a basic_subscriber: manual control
 * (the destinations listed in the configuration, as Aeron's addDestination) and dynamic control
 * (subscribers announce themselves to the publication's control address). Both subscribers get every
 * entry once and in order; a batch is confirmed only once every live receiver consumed it.
 */
describe('Aeron interop: multi-destination-cast to two subscribers', () => {
  const cleanups: Cleanups = [];
  afterEach(() => runCleanups(cleanups));

  async function twoSubscribers(channels: (i: number) => string): Promise<{ seen: string[][]; subs: Subscriber[] }> {
    const seen: string[][] = [[], []];
    const subs: Subscriber[] = [];
    for (let i = 0; i < 2; i++) {
      const driver: MediaDriver = await startMediaDriver();
      cleanups.push(() => driver.stop());
      const s = await startSubscriber(driver, channels(i), STREAM, seen[i]);
      cleanups.push(() => s.stop('SIGKILL'));
      subs.push(s);
    }
    return { seen, subs };
  }

  async function aggregator(configuration: Record<string, unknown>): Promise<AggregatorProcess> {
    const dir = await mkdtemp(join(tmpdir(), 'mc-interop-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const agg = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '20ms',
        AGGREGATOR_MAX_BATCH_SIZE: '200',
        AGGREGATOR_AERON_CONFIGURATION: JSON.stringify({ stream_id: STREAM, ...configuration }),
      },
    });
    cleanups.push(() => agg.kill());
    return agg;
  }

  /** Every entry at both; then one subscriber stuck holds confirmation and the sender back (min over live receivers). */
  async function deliverAndHold(agg: AggregatorProcess, seen: string[][], subs: Subscriber[]): Promise<void> {
    await waitFor(async () => (await agg.metric('mega_aggregator_aeron_receivers')) === 2, { timeoutMs: 20_000, what: 'both receivers live' });
    await shipEntries(agg, 0, 3000, 60);
    await waitFor(() => seen.every((p) => p.length >= 3000), { timeoutMs: 60_000, what: 'every entry at both subscribers' });
    for (const p of seen) expect(p).toEqual(Array.from({ length: 3000 }, (_, i) => entryText(i, 60)));
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });

    // One subscriber stuck (not longer than the driver's 10 s client liveness): its driver keeps
    // reporting its old position, so nothing past it is confirmed, and the publication paces itself
    // by it (min flow control: the other gets at most one receiver window more), so it loses nothing.
    (subs[1] as Subscriber).child.kill('SIGSTOP');
    await shipEntries(agg, 3000, 2000, 60);
    await new Promise((r) => setTimeout(r, 2000));
    const held = { pending: await pending(agg), receivers: await agg.metric('mega_aggregator_aeron_receivers'), stuckSaw: (seen[1] as string[]).length };
    expect(held).toMatchObject({ receivers: 2, stuckSaw: 3000 });
    expect(held.pending).toBeGreaterThan(0);
    expect((seen[0] as string[]).length).toBeLessThan(5000);
    (subs[1] as Subscriber).child.kill('SIGCONT');
    await waitFor(() => seen.every((p) => p.length >= 5000), { timeoutMs: 60_000, what: 'the rest at both subscribers' });
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    for (const p of seen) expect(countEntries(p, 5000, 60)).toEqual({ lost: 0, duplicated: 0, changed: 0 });
    expect(await agg.stop()).toBe(0);
  }

  it('manual control: the publication sends to each listed destination', async () => {
    const ports = [await freeUdpPort(), await freeUdpPort()];
    const { seen, subs } = await twoSubscribers((i) => `aeron:udp?endpoint=127.0.0.1:${ports[i]}`);
    const agg = await aggregator({
      channel: 'aeron:udp?control-mode=manual|term-length=1m',
      destinations: [`aeron:udp?endpoint=127.0.0.1:${ports[0]}`, `localhost:${ports[1]}`],
    });
    await deliverAndHold(agg, seen, subs);
  });

  it('dynamic control: subscribers announce themselves to control= and the publication sends to each live one', async () => {
    const control = await freeUdpPort();
    const ports = [await freeUdpPort(), await freeUdpPort()];
    const { seen, subs } = await twoSubscribers((i) => `aeron:udp?endpoint=127.0.0.1:${ports[i]}|control=127.0.0.1:${control}|control-mode=dynamic`);
    const agg = await aggregator({ channel: `aeron:udp?control=127.0.0.1:${control}|control-mode=dynamic|term-length=1m` });
    await deliverAndHold(agg, seen, subs);
  });
});

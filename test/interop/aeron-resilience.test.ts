import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { countEntries, entryText, freeUdpPort, shipEntries } from '../helpers/aeron-pipeline.js';
import { waitFor } from '../helpers/wait-for.js';
import { REPO_ROOT } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { runStreamingPublisher, startMediaDriver, throttle } from './aeron-driver.js';
import { STREAM, interopPipeline, pendingEntries as pending, runCleanups } from './interop-harness.js';
import type { Cleanups } from './interop-harness.js';

/**
 * The Aeron emitter against the real C media driver when things go wrong: DATA lost by the driver's
 * loss interceptor, a slow subscriber across many term rotations, subscribers and drivers that
 * restart, the aggregator killed or stopped while its subscriber is dead or slow; and the C
 * streaming_publisher into our receiver. Every entry is uniquely numbered; lost must be 0, and
 * duplicates appear only where a restart makes them (counted, never hidden).
 */
const RECEIVER_MAIN = join(REPO_ROOT, 'dist', 'cmd', 'aeron-receiver', 'main.js');

/** The publication's counters, which the emitter logs when it closes. */
async function publicationCounters(agg: AggregatorProcess): Promise<Record<string, number>> {
  const closed = await agg.waitForLog((r) => r.msg === 'aeron publication closed');
  return closed.counters as Record<string, number>;
}

describe('Aeron interop: loss, rotation, restarts', () => {
  const cleanups: Cleanups = [];
  afterEach(() => runCleanups(cleanups));

  it.each([0.05, 0.2])('%s of DATA frames dropped by the driver\'s loss interceptor: every entry exactly once and in order (fragmented ones too)', async (rate) => {
    const t = await interopPipeline(cleanups, {
      driverEnv: {
        AERON_UDP_CHANNEL_INCOMING_INTERCEPTORS: 'loss',
        // Frame type 1 (DATA) only: mask 1 << 1.
        AERON_UDP_CHANNEL_TRANSPORT_BINDINGS_LOSS_ARGS: `rate=${rate}|recv-msg-mask=0x2|seed=${Math.round(rate * 1000)}`,
      },
    });
    const payloads: string[] = [];
    await t.subscribe(payloads);
    const agg = await t.start();
    const total = 4000;
    await shipEntries(agg, 0, total, 40);
    await waitFor(() => payloads.length >= total, { timeoutMs: 90_000, what: 'every entry at basic_subscriber' });
    expect(payloads).toEqual(Array.from({ length: total }, (_, i) => entryText(i, 40)));
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    expect(await agg.stop()).toBe(0);
    // The loss was real: the driver NAKed what it missed and the publication sent it again.
    expect((await publicationCounters(agg)).retransmits).toBeGreaterThan(0);
  });

  it('term rotation with a slow subscriber (64 KiB terms, subscriber stopped 80 % of the time): exactly once, in order', async () => {
    const t = await interopPipeline(cleanups, { channelExtra: '|term-length=64k' });
    const payloads: string[] = [];
    const sub = await t.subscribe(payloads);
    const slow = throttle(sub.child, 20, 80);
    cleanups.push(async () => slow());
    const agg = await t.start();
    // ~1.2 MB with the long entries: about 20 rotations of a 64 KiB term.
    const total = 6000;
    await shipEntries(agg, 0, total, 25);
    await waitFor(() => payloads.length >= total, { timeoutMs: 90_000, what: 'every entry at the slow subscriber' });
    slow();
    expect(payloads).toEqual(Array.from({ length: total }, (_, i) => entryText(i, 25)));
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    expect(await agg.stop()).toBe(0);
  });

  it('the subscriber restarts between messages, then the media driver restarts mid-stream: lost = 0, duplicates counted', async () => {
    const t = await interopPipeline(cleanups);
    const payloads: string[] = [];
    let sub = await t.subscribe(payloads);
    const agg = await t.start();
    const total = 9000;
    const seen = (): number => total - countEntries(payloads, total, 30).lost;
    await shipEntries(agg, 0, 3000, 30);
    await waitFor(async () => seen() === 3000 && (await pending(agg)) === 0, { timeoutMs: 60_000, what: 'a third consumed and confirmed' });
    // The subscriber restarts with nothing in flight. The C driver keeps the image of a subscriber
    // that leaves (its own Ctrl-C, SIGINT) and the new one joins it at the receive position, with no
    // new image and so no rejoin here: a subscriber leaving mid-stream could take with it what it had
    // not polled, or the rest of a fragmented message it had begun (its position moves per fragment),
    // and the driver's status messages confirm past it all the same. (SIGTERM kills basic_subscriber
    // without closing, and the driver holds the dead client's subscription, stalling the stream, for
    // its 10 s client liveness timeout.)
    await sub.stop('SIGINT');
    sub = await t.subscribe(payloads);
    await shipEntries(agg, 3000, 3000, 30);
    await waitFor(() => seen() === 6000, { timeoutMs: 60_000, what: 'two thirds at the subscribers' });
    // The driver restarts mid-stream: the subscriber stops reading (SIGSTOP) and the last third is
    // shipped, so the publication sends past the consumption the driver reports. Waiting until the
    // emitter has offered entries the subscriber never printed (a margin of a batch) makes sure the
    // new driver's image starts behind what was sent: a rejoin that goes back, every time (before,
    // whether anything was in flight when the driver went was left to timing).
    sub.child.kill('SIGSTOP');
    const rest = shipEntries(agg, 6000, total - 6000, 30);
    await waitFor(async () => (await agg.metric('mega_aggregator_aeron_messages_sent_total')) >= seen() + 200, {
      timeoutMs: 60_000,
      what: 'entries sent past the stopped subscriber',
    });
    await sub.stop('SIGKILL');
    await t.restartDriver();
    sub = await t.subscribe(payloads);
    await rest;
    await waitFor(() => countEntries(payloads, total, 30).lost === 0, { timeoutMs: 90_000, what: 'every entry at a subscriber' });
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    const c = countEntries(payloads, total, 30);
    expect(c).toMatchObject({ lost: 0, changed: 0 });
    // Each new image joined where the old one's last report stood: what came again is counted.
    const rejoins = await agg.metric('mega_aggregator_aeron_rejoins_total');
    expect(rejoins).toBeGreaterThanOrEqual(1);
    console.info(`subscriber + driver restart: ${total} entries, lost ${c.lost}, duplicated ${c.duplicated}, rejoins ${rejoins}, resent ${await agg.metric('mega_aggregator_aeron_rejoin_resent_bytes_total')} bytes`);
    expect(await agg.stop()).toBe(0);
  });

  it('kill -9 of the aggregator while its subscriber is slow: lost = 0 after a restart', async () => {
    const t = await interopPipeline(cleanups);
    const payloads: string[] = [];
    const sub = await t.subscribe(payloads);
    const slow = throttle(sub.child, 10, 90);
    cleanups.push(async () => slow());
    let agg = await t.start();
    await shipEntries(agg, 0, 20_000);
    await waitFor(() => payloads.length > 500, { timeoutMs: 60_000, what: 'some entries at the subscriber' });
    expect(await pending(agg)).toBeGreaterThan(0);
    await agg.kill();
    slow();
    agg = await t.start();
    await waitFor(() => countEntries(payloads, 20_000).lost === 0, { timeoutMs: 90_000, what: 'every entry at the subscriber' });
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    const c = countEntries(payloads, 20_000);
    console.info(`kill -9, slow subscriber: 20000 entries, lost ${c.lost}, duplicated ${c.duplicated}`);
    expect(c).toMatchObject({ lost: 0, changed: 0 });
  });

  it('SIGTERM of the aggregator while its subscriber is dead: the unconsumed entries stay in the spool and a restart delivers them', async () => {
    const t = await interopPipeline(cleanups);
    const payloads: string[] = [];
    const first = await t.subscribe(payloads);
    let agg = await t.start();
    await shipEntries(agg, 0, 1000);
    await waitFor(async () => payloads.length >= 1000 && (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'the first entries confirmed' });
    await first.stop('SIGKILL');
    await shipEntries(agg, 1000, 3000);
    await waitFor(async () => (await agg.metric('mega_aggregator_entries_emitted_total')) >= 4000, { timeoutMs: 30_000, what: 'the rest emitted' });
    expect(await agg.stop()).toBe(0);
    const stopped = await agg.waitForLog((r) => r.msg === 'stopped');
    expect(stopped.pendingInSpool).toBe(3000);

    await t.subscribe(payloads);
    agg = await t.start();
    await waitFor(() => countEntries(payloads, 4000).lost === 0, { timeoutMs: 60_000, what: 'every entry at a subscriber' });
    await waitFor(async () => (await pending(agg)) === 0, { timeoutMs: 30_000, what: 'every batch confirmed' });
    expect(countEntries(payloads, 4000)).toMatchObject({ lost: 0, changed: 0 });
  });
});

describe('Aeron interop: the C streaming_publisher into our receiver', () => {
  const cleanups: Cleanups = [];
  afterEach(() => runCleanups(cleanups));

  it('aeron-receiver --count gets 300,000 120-byte messages intact and in order', async () => {
    const driver = await startMediaDriver();
    cleanups.push(() => driver.stop());
    const port = await freeUdpPort();
    const channel = `aeron:udp?endpoint=127.0.0.1:${port}`;
    const total = 300_000;
    const receiver = spawn(process.execPath, [RECEIVER_MAIN, channel, String(STREAM), '--count', String(total)], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(async () => receiver.kill('SIGKILL'));
    let out = '';
    let err = '';
    receiver.stdout.on('data', (d: Buffer) => (out += d.toString()));
    receiver.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => receiver.once('exit', (code) => r(code)));
    await waitFor(() => err.includes('Subscribing to channel'), { timeoutMs: 15_000, what: 'aeron-receiver subscribed' });
    const published = await runStreamingPublisher(driver, channel, STREAM, total, 120);
    expect(published).toContain('Done sending.');
    const timer = setTimeout(() => receiver.kill('SIGTERM'), 60_000);
    const code = await exited;
    clearTimeout(timer);
    expect({ code, out: out.trim(), err: err.replace(/^(Subscribing|Available|Unavailable).*\n/gm, '') }).toEqual({
      code: 0,
      out: `received ${total} messages (${total * 120} bytes), intact and in order`,
      err: '',
    });
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { UdpReceiver } from '../../src/aeron/udp-receiver.js';
import { parseAeronConfiguration } from '../../src/config/aeron-config.js';
import { createAeronEmitter } from '../../src/emitters/aeron-emitter.js';
import type { AeronEmitter } from '../../src/emitters/aeron-emitter.js';
import type { Batch, EmitResult } from '../../src/emitters/emitter.js';
import { AeronRelay } from '../helpers/aeron-relay.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { createSocket } from 'node:dgram';
import { FrameType, decodeSetup, encodeStatusMessage } from '../../src/aeron/frame-codec.js';
import { computePosition } from '../../src/aeron/term-math.js';
import { lineNumber, makeBatches } from '../helpers/aeron-batches.js';
import { arrayBatch } from '../../src/emitters/array-batch.js';
import { restartablePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(port: number, onLine: (n: number, msg: Buffer) => void): Promise<UdpReceiver> {
  const r = await UdpReceiver.open({
    channel: `aeron:udp?endpoint=127.0.0.1:${port}`,
    streamId: 10,
    onMessage: (b, o, l) => onLine(lineNumber(b.subarray(o, o + l)), Buffer.from(b.subarray(o, o + l))),
  });
  cleanups.push(() => r.close());
  return r;
}

function emitter(port: number, extra: Record<string, unknown> = {}, deps: Parameters<typeof createAeronEmitter>[1] = {}): AeronEmitter {
  const config = parseAeronConfiguration(JSON.stringify({ channel: `aeron:udp?endpoint=127.0.0.1:${port}|term-length=1m`, stream_id: 10, ...extra }));
  const e = createAeronEmitter(config, { lingerMs: 2000, ...deps });
  cleanups.push(() => e.close());
  return e;
}

/** What the aggregator's batcher does with a retryable result: keep the batch and offer it again. */
async function emitUntilOk(e: AeronEmitter, batch: Batch, seen: EmitResult[]): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const r = await e.emit(batch, new AbortController().signal);
    seen.push(r);
    if (r.kind === 'ok') return;
    expect(r.kind).toBe('retryable');
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`batch ${batch.id} never went through`);
}


describe('Aeron emitter over real UDP', () => {
  it('delivers every entry exactly once, in order, through a relay that drops, duplicates and reorders', async () => {
    const got: number[] = [];
    const r = await receiver(0, (n) => got.push(n));
    const relay = await AeronRelay.open({ targetPort: r.port, random: seededRandom(42), dropRate: 0.05, duplicateRate: 0.05, reorderRate: 0.05 });
    cleanups.push(() => relay.close());
    const registry = new Registry();
    const e = emitter(relay.port, {}, { registry });
    await e.start();
    const batches = makeBatches(40, 500);
    const seen: EmitResult[] = [];
    for (const b of batches) await emitUntilOk(e, b, seen);
    await e.close();
    await waitFor(() => got.length >= 20_000, { timeoutMs: 20_000, intervalMs: 10, what: 'all lines' });
    expect(got.length).toBe(20_000);
    expect(got.every((n, i) => n === i)).toBe(true);
    expect(relay.counts.dropped).toBeGreaterThan(10);
    expect(relay.counts.duplicated).toBeGreaterThan(10);
    expect(relay.counts.reordered).toBeGreaterThan(10);
    expect(e.udpPublication?.publication.counters.retransmits).toBeGreaterThan(0);
    const metrics = await registry.getMetricsAsJSON();
    const sent = metrics.find((m) => m.name === 'mega_aggregator_aeron_messages_sent_total');
    expect(sent?.values[0]?.value).toBe(20_000);
    expect(sent?.values[0]?.labels).toEqual({ channel: `aeron:udp?endpoint=127.0.0.1:${relay.port}|term-length=1m`, stream_id: '10' });
  }, 60_000);

  it('loses nothing when the receiver dies mid-stream and comes back on the same port', async () => {
    const first: number[] = [];
    const second: number[] = [];
    // A port it can come back to: one from port 0 may be handed to another test's receiver (stream 10
    // too) while this one is away, which then keeps the publication connected (seen once in CI).
    let r1 = await receiver(await restartablePort('udp'), (n) => first.push(n));
    const port = r1.port;
    const e = emitter(port, { publication_timeout: '300ms', max_retries: 2, retry_delay: '20ms', max_retry_delay: '50ms' }, { connectionTimeoutMs: 500 });
    const batches = makeBatches(30, 400);
    const seen: EmitResult[] = [];
    let restarted = false;
    const run = (async () => {
      for (const b of batches) await emitUntilOk(e, b, seen);
    })();
    // Kill the receiver abruptly (no EOS, like SIGKILL) once a third has arrived, wait until the
    // emitter reports not-connected, then bring a new receiver up on the same port.
    await waitFor(() => first.length > 4000, { timeoutMs: 20_000, intervalMs: 10, what: 'first third' });
    await r1.close();
    const isNotConnected = (s: EmitResult) => s.kind === 'retryable' && (s.error as { code?: string }).code === 'MC_ERR_NOT_CONNECTED';
    await waitFor(() => seen.some(isNotConnected), { timeoutMs: 20_000, intervalMs: 10, what: 'a not-connected result' });
    r1 = await receiver(port, (n) => second.push(n));
    restarted = true;
    await run;
    await e.close();
    await waitFor(() => new Set([...first, ...second]).size === 12_000, { timeoutMs: 20_000, intervalMs: 10, what: 'every line' });
    expect(restarted).toBe(true);
    expect(seen.filter(isNotConnected).length).toBeGreaterThan(0);
    // Each receiver saw an in-order run; the second starts at or before where the first stopped.
    expect(first.every((n, i) => n === i)).toBe(true);
    expect(second[0]).toBeLessThanOrEqual(first.length);
    expect(second.every((n, i) => i === 0 || n === (second[i - 1] as number) + 1)).toBe(true);
    expect(second.at(-1)).toBe(11_999);
    expect(e.udpPublication?.publication.counters.rewinds).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('rejects oversized entries as fatal while publishing the rest, and formats json', async () => {
    const msgs: Buffer[] = [];
    const r = await receiver(0, (_n, m) => msgs.push(m));
    const e = emitter(r.port, { data_format: 'json', max_message_size: 400 });
    const [batch] = makeBatches(1, 5, 120);
    const big = makeBatches(1, 1, 1000, 5)[0]!.entries()[0]!;
    const entries = [...batch!.entries().slice(0, 2), big, ...batch!.entries().slice(2)];
    const result = await e.emit(arrayBatch(7, entries), new AbortController().signal);
    expect(result.kind).toBe('fatal');
    if (result.kind === 'fatal') expect(result.rejected).toEqual([2]);
    await e.close();
    await waitFor(() => msgs.length === 5, { timeoutMs: 5000, intervalMs: 10, what: 'five json messages' });
    const docs = msgs.map((m) => JSON.parse(m.toString('utf8')) as { line: string; source: { offset: number; collector_id: string }; timestamp: string; tags: Record<string, string> });
    expect(docs.map((d) => d.line.slice(0, 7))).toEqual(['line-0 ', 'line-1 ', 'line-2 ', 'line-3 ', 'line-4 ']);
    expect(docs[1]?.source).toMatchObject({ offset: 120, collector_id: 'collector-1' });
    expect(docs[0]?.tags).toEqual({ host: 'h1' });
    expect(docs[0]?.timestamp).toMatch(/^2023-11-14T22:13:20\.\d{9}Z$/);
  }, 30_000);

  it('returns retryable when no receiver is there within publication_timeout, and close() is idempotent', async () => {
    const e = emitter(9, { publication_timeout: '200ms' });
    const [batch] = makeBatches(1, 3);
    const r = await e.emit(batch!, new AbortController().signal);
    expect(r.kind).toBe('retryable');
    if (r.kind === 'retryable') expect((r.error as { code?: string }).code).toBe('MC_ERR_NOT_CONNECTED');
    const c1 = e.close();
    const c2 = e.close();
    await Promise.all([c1, c2]);
    expect((await e.emit(batch!, new AbortController().signal)).kind).toBe('retryable');
  }, 30_000);

  it('back pressure beyond max_retries is retryable; the retry resumes the batch without duplicates', async () => {
    // A receiver written with the codec alone: it grants a 4 KiB window and stops answering while frozen.
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
    let frozen = false;
    let setup: ReturnType<typeof decodeSetup> | undefined;
    let received = 0;
    const sm = (position: number, to: { port: number; address: string }) => {
      if (setup === undefined) return;
      const s = setup;
      sock.send(
        encodeStatusMessage({ flags: 0, sessionId: s.sessionId, streamId: s.streamId, consumptionTermId: (s.initialTermId + Math.floor(position / s.termLength)) | 0, consumptionTermOffset: position % s.termLength, receiverWindow: 4096, receiverId: 5n }),
        to.port,
        to.address,
      );
    };
    let high = 0;
    let peer = { port: 0, address: '127.0.0.1' };
    sock.on('message', (msg, rinfo) => {
      peer = rinfo;
      const type = msg.readInt16LE(6);
      if (type === FrameType.Setup && setup === undefined) {
        setup = decodeSetup(msg);
        sm(0, rinfo);
      } else if (type === FrameType.Data && msg.length > 32 && setup !== undefined) {
        received += 1;
        high = Math.max(high, computePosition(msg.readInt32LE(20), msg.readInt32LE(8), setup.termLength, setup.initialTermId) + msg.length);
        if (!frozen) sm(high, rinfo);
      } else if (type === FrameType.Data && !frozen) sm(high, rinfo);
    });
    const registry = new Registry();
    const e = emitter(sock.address().port, { max_retries: 2, retry_delay: '10ms', max_retry_delay: '20ms' }, { registry });
    const [batch] = makeBatches(1, 5000); // 800 KiB framed: more than the term/2 the log may run ahead of the sender
    frozen = true;
    const first = await e.emit(batch!, new AbortController().signal);
    expect(first.kind).toBe('retryable');
    if (first.kind === 'retryable') expect((first.error as { code?: string }).code).toBe('MC_ERR_BACK_PRESSURE');
    frozen = false;
    sm(high, peer);
    const second = await e.emit(batch!, new AbortController().signal);
    expect(second.kind).toBe('ok');
    const value = async (name: string) => (await registry.getMetricsAsJSON()).find((m) => m.name === name)?.values[0]?.value ?? 0;
    expect(await value('mega_aggregator_aeron_messages_sent_total')).toBe(5000);
    expect(await value('mega_aggregator_aeron_retry_attempts_total')).toBeGreaterThanOrEqual(3);
    expect(await value('mega_aggregator_aeron_backpressure_errors_total')).toBeGreaterThanOrEqual(3);
    expect(await value('mega_aggregator_aeron_transferred_bytes_total')).toBe(5000 * 120);
    expect(received).toBeGreaterThan(0);
  }, 30_000);

  it('"confirm": "sent" confirms once sent; "receiver" waits for a consumption report that a stalled subscriber never gives', async () => {
    // A receiver written with the codec alone: a 256 KiB window, and a consumption position that stays at 0.
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
    const setups = new Map<number, ReturnType<typeof decodeSetup>>();
    let dataBytes = 0;
    sock.on('message', (msg, rinfo) => {
      const type = msg.readInt16LE(6);
      if (type === FrameType.Setup) setups.set(msg.readInt32LE(12), decodeSetup(msg));
      else if (type === FrameType.Data && msg.length > 32) dataBytes += msg.length;
      else if (type !== FrameType.Data) return;
      const s = setups.get(msg.readInt32LE(12));
      if (s === undefined) return;
      sock.send(
        encodeStatusMessage({ flags: 0, sessionId: s.sessionId, streamId: s.streamId, consumptionTermId: s.initialTermId, consumptionTermOffset: 0, receiverWindow: 256 * 1024, receiverId: 9n }),
        rinfo.port,
        rinfo.address,
      );
    });
    const [batch] = makeBatches(1, 500); // 80 KiB framed: inside the window
    const outcome = (c: Promise<boolean> | undefined) => Promise.race([c ?? Promise.resolve(undefined), new Promise((r) => setTimeout(() => r('pending'), 1000))]);

    const sent = emitter(sock.address().port, { confirm: 'sent' });
    const r1 = await sent.emit(batch!, new AbortController().signal);
    expect(r1.kind).toBe('ok');
    expect(await outcome(r1.kind === 'ok' ? r1.confirmed : undefined)).toBe(true);
    // Sent means handed to the kernel: the receiver (this process) reads it a moment later.
    await waitFor(() => dataBytes >= 500 * 120, { timeoutMs: 10_000, intervalMs: 10, what: 'the batch at the receiver' });
    expect(sent.udpPublication?.publication.confirmedPosition).toBe(0);

    const receiverConfirmed = emitter(sock.address().port);
    const r2 = await receiverConfirmed.emit(batch!, new AbortController().signal);
    expect(r2.kind).toBe('ok');
    expect(await outcome(r2.kind === 'ok' ? r2.confirmed : undefined)).toBe('pending');
    receiverConfirmed.udpPublication?.abort();
  }, 30_000);
});

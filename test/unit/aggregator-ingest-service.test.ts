import { describe, expect, it } from 'vitest';
import { admitChunk } from '../../src/aggregator/admission.js';
import { IngestService } from '../../src/aggregator/ingest-service.js';
import { AcceptedOffsets } from '../../src/aggregator/accepted-offsets.js';
import { createDedupeMetrics } from '../../src/telemetry/dedupe-metrics.js';
import type { ChunkSink, DeadLetterSink } from '../../src/aggregator/ingest-service.js';
import { ErrorCode, McError } from '../../src/errors.js';
import { createAggregatorMetrics } from '../../src/telemetry/aggregator-metrics.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import { decodeEntries, lineSpans } from '../../src/wire/entry-batch.js';
import { identityRuns } from '../../src/wire/entry-identity.js';
import { AckCode } from '../../src/wire/grpc-api.js';
import type { ChunkMessage } from '../../src/wire/grpc-api.js';
import { readLimits } from '../../src/wire/ingest-limits.js';
import type * as grpc from '@grpc/grpc-js';
import { FakeShipCall as FakeCall } from '../helpers/fake-ship-call.js';
import { buildEntries } from '../helpers/ingest-client.js';

const limits = { maxChunkBytes: 64 * 1024, maxLineBytes: 1024, maxEntriesPerChunk: 100, maxTags: 4, maxTagBytes: 64 };

/** Dead letters kept in memory (durable at once). */
class MemoryDeadLetters implements DeadLetterSink {
  readonly letters: Array<{ data: Buffer; entryCount: number; reason: string }> = [];
  add(data: Buffer, entryCount: number, reason: string): Promise<void> {
    this.letters.push({ data, entryCount, reason });
    return Promise.resolve();
  }
}

/**
 * A sink whose appends complete when the test says so, in any order. Like the spool, it refuses an
 * append at once (SpoolFull) when what it holds plus what is in flight plus the record passes
 * `capacity`, and says so synchronously through refusal().
 */
class ManualSink implements ChunkSink {
  bytes = 0;
  capacity = Number.POSITIVE_INFINITY;
  readonly appended: Buffer[] = [];
  /** The line spans each append came with, in call order. */
  readonly spans: Array<Uint32Array | undefined> = [];
  readonly pending: Array<{ resolve: () => void; reject: (e: Error) => void; data: Buffer }> = [];
  private reserved = 0;
  refusal(dataBytes: number): Error | undefined {
    return this.bytes + this.reserved + dataBytes > this.capacity ? new McError(ErrorCode.SpoolFull, 'full') : undefined;
  }
  append(data: Buffer, _entryCount: number, spans?: Uint32Array): Promise<unknown> {
    this.spans.push(spans);
    const refused = this.refusal(data.length);
    if (refused !== undefined) return Promise.reject(refused);
    this.reserved += data.length;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({
        data,
        resolve: () => {
          this.reserved -= data.length;
          this.appended.push(data);
          this.bytes += data.length;
          resolve();
        },
        reject: (e) => {
          this.reserved -= data.length;
          reject(e);
        },
      });
    });
  }
}

function chunk(sequence: number, text = `line ${sequence}`): ChunkMessage {
  const { entries, entryCount } = buildEntries([{ data: Buffer.from(text) }]);
  return { sequence, entries, entryCount };
}

function emitAll(call: FakeCall, chunks: ChunkMessage[]): void {
  for (const c of chunks) call.emit('data', c);
}

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

function setup(maxSpoolBytes = 1024 * 1024) {
  const sink = new ManualSink();
  const clock = new ManualClock();
  const metrics = createAggregatorMetrics({ defaultMetrics: false });
  const deadLetters = new MemoryDeadLetters();
  const service = new IngestService({ sink, limits, deadLetters, maxSpoolBytes, clock, metrics });
  const call = new FakeCall();
  service.ship(call as never);
  return { sink, clock, metrics, service, call, deadLetters };
}

describe('admission', () => {
  it('accepts a well-formed chunk and reports its entries', () => {
    const c = buildEntries([{ data: Buffer.from('a') }, { data: Buffer.from([0xff]) }]);
    expect(admitChunk({ sequence: 1, ...c }, limits)).toEqual({ ok: true, entryCount: 2, lineBytes: 2, oversizedLines: 0, spans: lineSpans(c.entries) });
  });

  it('with deduplication on, finds the entry identities on the same scan', () => {
    const c = buildEntries([{ data: Buffer.from('a'), fileId: 'f1', offset: 10 }, { data: Buffer.from('bc'), fileId: 'f1', offset: 12 }], { collectorId: 'col' });
    expect(admitChunk({ sequence: 1, ...c }, limits, true)).toMatchObject({ ok: true, identity: identityRuns(c.entries) });
    expect(identityRuns(c.entries).runs).toEqual([{ fileId: 'f1', lo: 10, hi: 12, next: 15, count: 2 }]);
    expect(admitChunk({ sequence: 1, ...c }, limits)).not.toHaveProperty('identity');
  });

  it('accepts a chunk with a line over the limit and reports the line (it goes to the dead letters)', () => {
    const long = buildEntries([{ data: Buffer.from('short') }, { data: Buffer.alloc(2000) }]);
    expect(admitChunk({ sequence: 1, ...long }, limits)).toMatchObject({ ok: true, entryCount: 2, oversizedLines: 1 });
  });

  it('refuses more entries, tags or tag bytes than the limits, counting only the entries it saw', () => {
    const many = buildEntries(Array.from({ length: 101 }, () => ({ data: Buffer.alloc(0) })));
    expect(admitChunk({ sequence: 1, ...many }, limits)).toMatchObject({ ok: false, entriesSeen: 100, reason: expect.stringMatching(/more than 100 entries/) });
    const tags = Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
    const tagged = buildEntries([{ data: Buffer.from('x') }], { tags });
    expect(admitChunk({ sequence: 1, ...tagged }, limits)).toMatchObject({ ok: false, reason: expect.stringMatching(/more than 4 tags/) });
    const fat = buildEntries([{ data: Buffer.from('x') }], { tags: [{ key: 'k', value: 'v'.repeat(64) }] });
    expect(admitChunk({ sequence: 1, ...fat }, limits)).toMatchObject({ ok: false, reason: expect.stringMatching(/more than 64 bytes/) });
  });

  it('refuses garbage, a wrong entry_count and a chunk over the limit', () => {
    expect(admitChunk({ sequence: 1, entries: Buffer.from([0x1a, 0x05, 0x01]), entryCount: 1 }, limits)).toMatchObject({ ok: false });
    const c = buildEntries([{ data: Buffer.from('a') }]);
    expect(admitChunk({ sequence: 1, entries: c.entries, entryCount: 2 }, limits)).toMatchObject({ ok: false, reason: expect.stringMatching(/entry_count/) });
    const big = buildEntries(Array.from({ length: 70 }, () => ({ data: Buffer.alloc(1000) })));
    expect(admitChunk({ sequence: 1, ...big }, limits)).toMatchObject({ ok: false, reason: expect.stringMatching(/exceeds the limit of 65536/) });
  });
});

describe('ingest service', () => {
  it('answers one ack per chunk, in chunk order, even when appends complete out of order', async () => {
    const { sink, call, metrics } = setup();
    for (let s = 1; s <= 3; s++) call.emit('data', chunk(s));
    await flush();
    expect(sink.pending).toHaveLength(3);
    sink.pending[2]?.resolve();
    sink.pending[1]?.resolve();
    await flush();
    expect(call.written).toEqual([]); // chunk 1 is not durable yet: nothing may be acked
    sink.pending[0]?.resolve();
    await flush();
    expect(call.written.map((a) => [a.sequence, a.code])).toEqual([[1, 'OK'], [2, 'OK'], [3, 'OK']]);
    expect((await metrics.entriesAcked.get()).values[0]?.value).toBe(3);
  });

  it('an invalid chunk is answered INVALID_ARGUMENT in its place and the stream carries on', async () => {
    const { sink, call } = setup();
    call.emit('data', chunk(1));
    call.emit('data', { sequence: 2, entries: Buffer.from('garbage!'), entryCount: 1 });
    call.emit('data', chunk(3));
    await flush();
    expect(sink.pending).toHaveLength(2);
    for (const p of sink.pending) p.resolve();
    await flush();
    expect(call.written.map((a) => [a.sequence, a.code])).toEqual([[1, 'OK'], [2, 'INVALID_ARGUMENT'], [3, 'OK']]);
  });

  it('spool full: RESOURCE_EXHAUSTED with retry_after_ms, and later chunks of the stream wait for its resend (order)', async () => {
    const { sink, call, clock } = setup(200);
    sink.bytes = 150;
    const first = chunk(1, 'x'.repeat(80));
    call.emit('data', first); // does not fit
    call.emit('data', chunk(2, 'y')); // would fit, but must not overtake chunk 1
    await flush();
    expect(call.written.map((a) => [a.sequence, a.code])).toEqual([[1, 'RESOURCE_EXHAUSTED'], [2, 'RESOURCE_EXHAUSTED']]);
    expect(call.written[0]?.retryAfterMs).toBeGreaterThan(0);
    expect(call.written[1]?.message).toMatch(/chunk 1 of this stream was refused; resend it first/);
    expect(sink.pending).toHaveLength(0);
    sink.bytes = 0;
    clock.advance(60_000);
    // Room again and time passed: still nothing after chunk 1 before chunk 1 itself.
    call.emit('data', chunk(3, 'y'));
    await flush();
    expect(call.written.at(-1)).toMatchObject({ sequence: 3, code: 'RESOURCE_EXHAUSTED' });
    call.emit('data', { ...first, sequence: 4 }); // the resend of chunk 1
    call.emit('data', chunk(5, 'y'));
    await flush();
    for (const p of sink.pending) p.resolve();
    await flush();
    expect(call.written.slice(-2).map((a) => [a.sequence, a.code])).toEqual([[4, 'OK'], [5, 'OK']]);
    expect(sink.appended.map((b) => decodeEntries(b)[0]?.line.toString())).toEqual(['x'.repeat(80), 'y']);
  });

  it('a smaller chunk right behind one the spool refuses (same tick, appends in flight) is not stored first', async () => {
    // The flaky collector-backpressure run: chunk 2 passes the bound check against the bytes on disk,
    // but not against what is already in flight, and is refused; chunk 3 is small enough to fit.
    const { sink, call } = setup(10_000);
    sink.capacity = 1000;
    const c1 = chunk(1, 'a'.repeat(600));
    const c2 = chunk(2, 'b'.repeat(500));
    const c3 = chunk(3, 'c'.repeat(10));
    call.emit('data', c1);
    call.emit('data', c2);
    call.emit('data', c3);
    await flush();
    expect(sink.pending.map((p) => decodeEntries(p.data)[0]?.line.toString()[0])).toEqual(['a']);
    sink.pending.shift()?.resolve();
    await flush();
    expect(call.written.map((a) => [a.sequence, a.code])).toEqual([[1, 'OK'], [2, 'RESOURCE_EXHAUSTED'], [3, 'RESOURCE_EXHAUSTED']]);
    // The collector resends chunk 2 alone, then chunk 3, once there is room.
    sink.bytes = 0;
    call.emit('data', { ...c2, sequence: 4 });
    await flush();
    sink.pending.shift()?.resolve();
    call.emit('data', { ...c3, sequence: 5 });
    await flush();
    sink.pending.shift()?.resolve();
    await flush();
    expect(call.written.slice(3).map((a) => [a.sequence, a.code])).toEqual([[4, 'OK'], [5, 'OK']]);
    expect(sink.appended.map((b) => decodeEntries(b)[0]?.line.toString()[0])).toEqual(['a', 'b', 'c']);
  });

  it('a refusal found only while writing (a full disk) holds the chunks of the stream received after it', async () => {
    const t = setup();
    const c1 = chunk(1, 'first');
    emitAll(t.call, [c1, chunk(2, 'second')]);
    await flush();
    // Chunk 1 was taken and its write failed: chunk 2 (its append already in flight) fails with it in the
    // spool (group-commit.ts); chunk 3, received after, must not be stored before chunk 1's resend.
    t.sink.pending[0]?.reject(new McError(ErrorCode.SpoolFull, 'disk full'));
    t.sink.pending[1]?.reject(new McError(ErrorCode.SpoolFull, 'disk full'));
    t.sink.pending.splice(0, 2);
    await flush();
    t.call.emit('data', chunk(3, 'third'));
    await flush();
    expect(t.sink.pending).toHaveLength(0);
    expect(t.call.written.map((a) => [a.sequence, a.code])).toEqual([[1, 'RESOURCE_EXHAUSTED'], [2, 'RESOURCE_EXHAUSTED'], [3, 'RESOURCE_EXHAUSTED']]);
    t.call.emit('data', { ...c1, sequence: 4 });
    await flush();
    expect(t.sink.pending).toHaveLength(1);
  });

  it('maps append errors: SpoolFull → RESOURCE_EXHAUSTED, SpoolClosed and disk errors → UNAVAILABLE (never OK)', async () => {
    const { sink, call } = setup();
    call.emit('data', chunk(1));
    call.emit('data', chunk(2));
    call.emit('data', chunk(3));
    await flush();
    sink.pending[0]?.reject(new McError(ErrorCode.SpoolFull, 'full'));
    sink.pending[1]?.reject(new McError(ErrorCode.SpoolClosed, 'closed'));
    sink.pending[2]?.reject(new Error('EIO'));
    await flush();
    expect(call.written.map((a) => a.code)).toEqual(['RESOURCE_EXHAUSTED', 'UNAVAILABLE', 'UNAVAILABLE']);
  });

  it('drain: acks in-flight chunks, answers new ones UNAVAILABLE, then ends the stream', async () => {
    const { sink, call, service } = setup();
    call.emit('data', chunk(1));
    await flush();
    const drained = service.drain(5000);
    call.emit('data', chunk(2));
    await flush();
    expect(call.ended).toBe(false);
    sink.pending[0]?.resolve();
    await drained;
    expect(call.written.map((a) => [a.sequence, a.code])).toEqual([[1, 'OK'], [2, 'UNAVAILABLE']]);
    expect(call.ended).toBe(true);
    expect(service.openStreams).toBe(0);
  });

  it('pauses a stream with too many chunks awaiting acks and resumes it as acks go out', async () => {
    const sink = new ManualSink();
    const service = new IngestService({ sink, limits, deadLetters: new MemoryDeadLetters(), maxSpoolBytes: 1 << 20, maxInflightChunksPerStream: 4 });
    const call = new FakeCall();
    service.ship(call as never);
    for (let s = 1; s <= 4; s++) call.emit('data', chunk(s));
    expect(call.paused).toBe(true);
    for (const p of sink.pending) p.resolve();
    await flush();
    expect(call.paused).toBe(false);
    expect(call.written).toHaveLength(4);
  });

  it('pauses a stream whose chunks awaiting acks, with its next one, would pass 2 × maxChunkBytes, and resumes it as acks go out', async () => {
    const sink = new ManualSink();
    const service = new IngestService({ sink, limits, deadLetters: new MemoryDeadLetters(), maxSpoolBytes: 1 << 30 });
    const call = new FakeCall();
    service.ship(call as never);
    // ~61 KB chunks: one and the next stay under 2 × 64 KiB, two and the next pass it. (This call is
    // no Readable, so the service pauses it instead of gating its reads.)
    const fat = buildEntries(Array.from({ length: 60 }, () => ({ data: Buffer.alloc(1000, 0x61) })));
    call.emit('data', { sequence: 1, ...fat });
    expect(call.paused).toBe(false);
    call.emit('data', { sequence: 2, ...fat });
    expect(call.paused).toBe(true);
    call.emit('data', { sequence: 3, ...fat }); // one that was already on its way
    for (const p of sink.pending) p.resolve();
    await flush();
    expect(call.paused).toBe(false);
    expect(call.written.map((a) => a.code)).toEqual(['OK', 'OK', 'OK']);
  });

  it('advertises its limits, and that it reads LineBlocks, in the response metadata as the stream opens', () => {
    const { call } = setup();
    expect(call.metadata).toHaveLength(1);
    expect(readLimits(call.metadata[0] as grpc.Metadata)).toEqual({ ...limits, lineBlocks: true });
  });

  it('keeps a line over the line limit as a dead letter and acks the rest of its chunk into the spool', async () => {
    const { sink, call, deadLetters, metrics } = setup();
    const lines = Array.from({ length: 20 }, (_, i) => ({ data: Buffer.from(`short ${i}`) }));
    lines.splice(7, 0, { data: Buffer.alloc(4096, 0x6c) });
    call.emit('data', { sequence: 1, ...buildEntries(lines) });
    await flush();
    expect(deadLetters.letters).toHaveLength(1);
    expect(deadLetters.letters[0]?.entryCount).toBe(1);
    expect(decodeEntries(deadLetters.letters[0]?.data as Buffer)[0]?.line.length).toBe(4096);
    expect(sink.pending).toHaveLength(1);
    sink.pending[0]?.resolve();
    await flush();
    expect(call.written.map((a) => [a.sequence, a.code])).toEqual([[1, 'OK']]);
    const kept = decodeEntries(sink.appended[0] as Buffer).map((e) => e.line.toString());
    expect(kept).toEqual(Array.from({ length: 20 }, (_, i) => `short ${i}`));
    expect((await metrics.entriesOversized.get()).values[0]?.value).toBe(1);
    expect((await metrics.entriesAcked.get()).values[0]?.value).toBe(20);
    // What is stored is not the chunk as scanned: no spans go with it (the reader walks it).
    expect(sink.spans).toEqual([undefined]);
  });

  it('hands the spool the line spans its admission scan found, for a chunk stored whole', async () => {
    const { sink, call } = setup();
    const c = buildEntries([{ data: Buffer.from('alpha') }, { data: Buffer.from('') }, { data: Buffer.from('gamma') }]);
    call.emit('data', { sequence: 1, ...c });
    await flush();
    expect(sink.spans).toEqual([lineSpans(c.entries)]);
    const spans = sink.spans[0] as Uint32Array;
    expect([0, 1, 2].map((i) => c.entries.toString('utf8', spans[2 * i], spans[2 * i + 1]))).toEqual(['alpha', '', 'gamma']);
  });

  it('counts the entries it saw, never the entry_count a client claims', async () => {
    const { call, metrics } = setup();
    // One empty line, claiming 2^32 - 1 entries.
    const one = buildEntries([{ data: Buffer.alloc(0) }]);
    call.emit('data', { sequence: 1, entries: one.entries, entryCount: 2 ** 32 - 1 });
    await flush();
    expect(call.written.map((a) => a.code)).toEqual(['INVALID_ARGUMENT']);
    const refused = (await metrics.entriesRefused.get()).values.reduce((n, v) => n + v.value, 0);
    const received = (await metrics.entriesReceived.get()).values[0]?.value;
    expect(refused).toBe(1);
    expect(received).toBe(1);
  });
});

describe('exactly-once: replays dropped by entry identity', () => {
  /** `count` numbered lines of file `fileId` from line `first` (lines of 9 bytes + "\n"). */
  function lines(sequence: number, first: number, count: number, fileId = 'f1'): ChunkMessage {
    const ls = Array.from({ length: count }, (_, i) => ({ data: Buffer.from(`line ${String(first + i).padStart(4, '0')}`), offset: (first + i) * 10, fileId }));
    const { entries, entryCount } = buildEntries(ls, { collectorId: 'c1' });
    return { sequence, entries, entryCount };
  }

  function dedupeSetup() {
    const sink = new ManualSink();
    const clock = new ManualClock();
    const metrics = createAggregatorMetrics({ defaultMetrics: false });
    const dedupeMetrics = createDedupeMetrics(metrics.registry);
    const accepted = new AcceptedOffsets(100);
    const service = new IngestService({ sink, limits, deadLetters: new MemoryDeadLetters(), maxSpoolBytes: 1024 * 1024, clock, metrics, accepted, dedupeMetrics });
    const open = (): FakeCall => {
      const call = new FakeCall();
      service.ship(call as never);
      return call;
    };
    const dropped = async (): Promise<number> => (await metrics.registry.getSingleMetric('mega_aggregator_replays_dropped_total')?.get())?.values.find((v) => v.labels.stage === 'ingest')?.value ?? -1;
    const stored = (): string[] => sink.appended.flatMap((b) => decodeEntries(b).map((e) => e.line.toString()));
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 10; i++) {
        await flush();
        while (sink.pending.length > 0) sink.pending.shift()?.resolve();
      }
    };
    return { sink, service, open, dropped, stored, settle };
  }

  it('acks a resent chunk without appending it again, and appends only the new part of a partly resent one', async () => {
    const t = dedupeSetup();
    const a = t.open();
    a.emit('data', lines(1, 0, 5));
    await t.settle();
    // The collector restarts and resends from an older checkpoint on a new stream.
    const b = t.open();
    b.emit('data', lines(1, 0, 5));
    b.emit('data', lines(2, 3, 4)); // lines 3..6: 3 and 4 are replays
    await t.settle();
    expect(b.written.map((x) => x.code)).toEqual([AckCode.OK, AckCode.OK]);
    expect(t.stored()).toEqual(['line 0000', 'line 0001', 'line 0002', 'line 0003', 'line 0004', 'line 0005', 'line 0006']);
    expect(await t.dropped()).toBe(7);
  });

  it('appends a chunk refused earlier and resent after later ones were accepted (a gap is never a replay)', async () => {
    const t = dedupeSetup();
    const a = t.open();
    a.emit('data', lines(1, 0, 5));
    a.emit('data', lines(2, 5, 5));
    await flush();
    t.sink.pending[0]?.reject(new McError(ErrorCode.SpoolFull, 'full'));
    t.sink.pending.shift();
    await t.settle();
    expect(a.written.map((x) => x.code)).toEqual([AckCode.RESOURCE_EXHAUSTED, AckCode.OK]);
    const b = t.open();
    b.emit('data', lines(1, 0, 5));
    await t.settle();
    expect(t.stored().sort()).toEqual(Array.from({ length: 10 }, (_, i) => `line ${String(i).padStart(4, '0')}`));
    expect(await t.dropped()).toBe(0);
  });

  it('appends a new generation of a file (new file_id) from offset 0', async () => {
    const t = dedupeSetup();
    const a = t.open();
    a.emit('data', lines(1, 0, 5, 'gen-1'));
    a.emit('data', lines(2, 0, 5, 'gen-2'));
    await t.settle();
    expect(t.stored()).toHaveLength(10);
    expect(await t.dropped()).toBe(0);
  });

  it('a resend on another stream waits for the append of the same lines still in flight, then drops them', async () => {
    const t = dedupeSetup();
    const a = t.open();
    a.emit('data', lines(1, 0, 5));
    await flush();
    expect(t.sink.pending).toHaveLength(1); // not durable yet
    const b = t.open();
    b.emit('data', lines(1, 0, 5));
    await flush();
    expect(t.sink.pending).toHaveLength(1); // the resend waits instead of appending a second copy
    await t.settle();
    expect(t.stored()).toHaveLength(5);
    expect(b.written.map((x) => x.code)).toEqual([AckCode.OK]);
    expect(await t.dropped()).toBe(5);
  });
});

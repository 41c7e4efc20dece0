import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { admitChunk } from '../../src/aggregator/admission.js';
import { IngestService } from '../../src/aggregator/ingest-service.js';
import type { ChunkSink } from '../../src/aggregator/ingest-service.js';
import { ErrorCode, McError } from '../../src/errors.js';
import { createAggregatorMetrics } from '../../src/telemetry/aggregator-metrics.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import type { AckMessage, ChunkMessage } from '../../src/wire/grpc-api.js';
import { buildEntries } from '../helpers/ingest-client.js';

const limits = { maxChunkBytes: 64 * 1024, maxLineBytes: 1024 };

/** Stands in for grpc-js's ServerDuplexStream: the handler only uses events, write, end, pause, resume. */
class FakeCall extends EventEmitter {
  readonly written: AckMessage[] = [];
  ended = false;
  paused = false;
  write(ack: AckMessage): boolean {
    this.written.push(ack);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  getPeer(): string {
    return 'test';
  }
}

/** A sink whose appends complete when the test says so, in any order. */
class ManualSink implements ChunkSink {
  bytes = 0;
  readonly appended: Buffer[] = [];
  readonly pending: Array<{ resolve: () => void; reject: (e: Error) => void; data: Buffer }> = [];
  append(data: Buffer): Promise<unknown> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({
        data,
        resolve: () => {
          this.appended.push(data);
          this.bytes += data.length;
          resolve();
        },
        reject,
      });
    });
  }
}

function chunk(sequence: number, text = `line ${sequence}`): ChunkMessage {
  const { entries, entryCount } = buildEntries([{ data: Buffer.from(text) }]);
  return { sequence, entries, entryCount };
}

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

function setup(maxSpoolBytes = 1024 * 1024) {
  const sink = new ManualSink();
  const clock = new ManualClock();
  const metrics = createAggregatorMetrics({ defaultMetrics: false });
  const service = new IngestService({ sink, limits, maxSpoolBytes, clock, metrics });
  const call = new FakeCall();
  service.ship(call as never);
  return { sink, clock, metrics, service, call };
}

describe('admission', () => {
  it('accepts a well-formed chunk and reports its entries', () => {
    const c = buildEntries([{ data: Buffer.from('a') }, { data: Buffer.from([0xff]) }]);
    expect(admitChunk({ sequence: 1, ...c }, limits)).toEqual({ ok: true, entryCount: 2, lineBytes: 2 });
  });

  it('refuses garbage, a wrong entry_count, a line over the limit and a chunk over the limit', () => {
    expect(admitChunk({ sequence: 1, entries: Buffer.from([0x1a, 0x05, 0x01]), entryCount: 1 }, limits)).toMatchObject({ ok: false });
    const c = buildEntries([{ data: Buffer.from('a') }]);
    expect(admitChunk({ sequence: 1, entries: c.entries, entryCount: 2 }, limits)).toMatchObject({ ok: false, reason: expect.stringMatching(/entry_count/) });
    const long = buildEntries([{ data: Buffer.alloc(2000) }]);
    expect(admitChunk({ sequence: 1, ...long }, limits)).toMatchObject({ ok: false, reason: expect.stringMatching(/line of 2000 bytes/) });
    const big = buildEntries(Array.from({ length: 100 }, () => ({ data: Buffer.alloc(1000) })));
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

  it('spool full: RESOURCE_EXHAUSTED with retry_after_ms, and later chunks of the stream wait too (order)', async () => {
    const { sink, call, clock } = setup(200);
    sink.bytes = 150;
    call.emit('data', chunk(1, 'x'.repeat(80))); // does not fit
    call.emit('data', chunk(2, 'y')); // would fit, but must not overtake chunk 1
    await flush();
    expect(call.written.map((a) => [a.sequence, a.code])).toEqual([[1, 'RESOURCE_EXHAUSTED'], [2, 'RESOURCE_EXHAUSTED']]);
    expect(call.written[0]?.retryAfterMs).toBeGreaterThan(0);
    expect(sink.pending).toHaveLength(0);
    sink.bytes = 0;
    clock.advance(1000);
    call.emit('data', chunk(3, 'x'.repeat(80)));
    await flush();
    sink.pending[0]?.resolve();
    await flush();
    expect(call.written.at(-1)).toMatchObject({ sequence: 3, code: 'OK' });
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
    const service = new IngestService({ sink, limits, maxSpoolBytes: 1 << 20, maxInflightChunksPerStream: 4 });
    const call = new FakeCall();
    service.ship(call as never);
    for (let s = 1; s <= 4; s++) call.emit('data', chunk(s));
    expect(call.paused).toBe(true);
    for (const p of sink.pending) p.resolve();
    await flush();
    expect(call.paused).toBe(false);
    expect(call.written).toHaveLength(4);
  });
});

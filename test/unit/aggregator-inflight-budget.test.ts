import { describe, expect, it } from 'vitest';
import { InflightBudget } from '../../src/aggregator/inflight-budget.js';
import type { InflightBudgetOptions, StreamBudget } from '../../src/aggregator/inflight-budget.js';
import { ManualClock } from '../../src/util/manual-clock.js';

const MiB = 1024 * 1024;

/**
 * A stream as the ingest service drives it: it asks to read its next message (as grpc-js's call does
 * in `_read`) and may send exactly one message per permission; `send` stands for its message arriving.
 */
class Stream {
  allowed = false;
  reads = 0;
  handle!: StreamBudget;

  read(): void {
    this.allowed = true;
    this.reads++;
  }

  /** Asks for its next message; true when it may send it now. */
  ask(): boolean {
    return this.handle.request();
  }

  /** Its message of `bytes` arrives (only allowed streams send), then it asks for the next one. */
  send(bytes: number): void {
    if (!this.allowed) throw new Error('sent without being allowed to');
    this.allowed = false;
    this.handle.take(bytes);
    this.ask();
  }
}

function setup(options: Partial<InflightBudgetOptions> & Pick<InflightBudgetOptions, 'totalBytes' | 'maxStreamBytes'>, n: number) {
  const clock = new ManualClock();
  const budget = new InflightBudget({ maxStreamChunks: 64, clock, ...options });
  const streams = Array.from({ length: n }, () => {
    const s = new Stream();
    s.handle = budget.add(s);
    return s;
  });
  return { clock, budget, streams };
}

/** Memory held: chunks awaiting acks and the room held for messages streams may read. */
function held(budget: InflightBudget): number {
  return budget.bytes + budget.grantedBytes;
}

describe('in-flight budget shared by all streams', () => {
  it('one stream reads while its chunks and its next one fit in maxStreamBytes, and waits past it until acks free its share', () => {
    const { streams } = setup({ totalBytes: 64 * MiB, maxStreamBytes: 4 * MiB, firstChunkBytes: MiB }, 1);
    const s = streams[0] as Stream;
    expect(s.ask()).toBe(true);
    for (let i = 0; i < 3; i++) s.send(MiB);
    // 3 MiB in flight + 1 expected = 4 MiB: it may read the fourth.
    expect(s.allowed).toBe(true);
    s.send(MiB);
    expect(s.allowed).toBe(false);
    s.handle.release(MiB);
    expect(s.allowed).toBe(true);
  });

  it('splits the total between streams: what is held stays within the budget however many streams there are, and nothing is read ahead', () => {
    const { budget, streams } = setup({ totalBytes: 16 * MiB, maxStreamBytes: 32 * MiB, firstChunkBytes: MiB }, 50);
    for (const s of streams) s.ask();
    let peak = held(budget);
    // Every allowed stream sends; no ack goes out.
    for (let round = 0; round < 10; round++) {
      for (const s of streams) if (s.allowed) s.send(MiB);
      peak = Math.max(peak, held(budget));
    }
    // Not one chunk per stream (50 MiB), nor 50 × 32 MiB: the budget.
    expect(peak).toBeLessThanOrEqual(16 * MiB);
    expect(budget.bytes).toBe(16 * MiB);
    expect(streams.filter((s) => s.allowed)).toHaveLength(0);
    expect(budget.waitingStreams).toBe(50);
    // Sixteen streams sent one chunk each; the others have not read at all (no message held for them).
    expect(streams.filter((s) => s.reads === 1)).toHaveLength(16);
    expect(streams.filter((s) => s.reads === 0)).toHaveLength(34);
  });

  it('lets waiting streams read oldest first as acks free room, the ones that waited longest before those that just sent', () => {
    const { streams } = setup({ totalBytes: 4 * MiB, maxStreamBytes: 4 * MiB, firstChunkBytes: MiB }, 6);
    for (const s of streams) s.ask();
    const [a, b, c, d, e, f] = streams as [Stream, Stream, Stream, Stream, Stream, Stream];
    expect(streams.map((s) => s.allowed)).toEqual([true, true, true, true, false, false]);
    for (const s of [a, b, c, d]) s.send(MiB);
    expect(streams.map((s) => s.allowed)).toEqual([false, false, false, false, false, false]);
    a.handle.release(MiB);
    // e and f waited before a, b, c, d asked again.
    expect([e.allowed, f.allowed, a.allowed]).toEqual([true, false, false]);
    b.handle.release(MiB);
    expect([f.allowed, a.allowed]).toEqual([true, false]);
    c.handle.release(MiB);
    d.handle.release(MiB);
    // e and f hold room for their next chunks (2 MiB), a and b get the 2 MiB freed.
    expect([a.allowed, b.allowed, c.allowed, d.allowed]).toEqual([true, true, false, false]);
  });

  it('a stream waiting on its own share does not hold back the others', () => {
    const { streams } = setup({ totalBytes: 8 * MiB, maxStreamBytes: 2 * MiB, firstChunkBytes: MiB }, 2);
    const [greedy, other] = streams as [Stream, Stream];
    greedy.ask();
    greedy.send(MiB);
    greedy.send(MiB);
    expect(greedy.allowed).toBe(false);
    // greedy waits (first in line) for its acks; other asks after it and still reads.
    expect(other.ask()).toBe(true);
  });

  it('with nothing in flight and no room held, one stream reads whatever the budget says (a chunk larger than the budget passes)', () => {
    const { budget, streams } = setup({ totalBytes: 2 * MiB, maxStreamBytes: 64 * MiB, firstChunkBytes: 8 * MiB }, 3);
    for (const s of streams) s.ask();
    expect(streams.map((s) => s.allowed)).toEqual([true, false, false]);
    const [a, b] = streams as [Stream, Stream, Stream];
    a.send(8 * MiB);
    expect(budget.bytes).toBe(8 * MiB);
    expect(b.allowed).toBe(false);
    a.handle.release(8 * MiB);
    expect(streams.map((s) => s.allowed)).toEqual([false, true, false]);
  });

  it('a stream allowed to read that stays idle gives its room back after idleGrantMs, so the busy ones go on', () => {
    const { clock, budget, streams } = setup({ totalBytes: 2 * MiB, maxStreamBytes: 2 * MiB, firstChunkBytes: MiB, idleGrantMs: 1000 }, 3);
    const [idle1, idle2, busy] = streams as [Stream, Stream, Stream];
    idle1.ask();
    idle2.ask();
    expect(busy.ask()).toBe(false);
    expect(budget.grantedBytes).toBe(2 * MiB);
    // Nothing in flight, so no ack will come: the room held by the idle streams is given back in time.
    clock.advance(999);
    expect(busy.allowed).toBe(false);
    clock.advance(1);
    expect(busy.allowed).toBe(true);
    busy.send(MiB);
    busy.handle.release(MiB);
    expect(busy.allowed).toBe(true);
    // The idle streams keep their permission: when one sends after all, its chunk is counted as usual.
    idle1.send(MiB);
    expect(budget.bytes).toBe(MiB);
  });

  it('a stream that goes away gives its share and the room held for it back to the others', () => {
    const { budget, streams } = setup({ totalBytes: 4 * MiB, maxStreamBytes: 4 * MiB, firstChunkBytes: MiB }, 2);
    const [a, gone] = streams as [Stream, Stream];
    gone.ask();
    a.ask();
    a.send(MiB);
    // Two streams: a's share is 2 MiB, it holds 1 MiB and expects 1 MiB more.
    expect(a.allowed).toBe(true);
    a.send(MiB);
    expect(a.allowed).toBe(false);
    gone.handle.remove();
    // Alone now: a's share is 4 MiB, and nothing is held for the stream that left.
    expect(budget.grantedBytes).toBe(MiB);
    expect(a.allowed).toBe(true);
  });

  it('counts chunks too', () => {
    const { streams } = setup({ totalBytes: 64 * MiB, maxStreamBytes: 64 * MiB, maxStreamChunks: 4 }, 1);
    const s = streams[0] as Stream;
    s.ask();
    for (let i = 0; i < 4; i++) s.send(10);
    expect(s.allowed).toBe(false);
    s.handle.release(10);
    expect(s.allowed).toBe(true);
  });

  it('many streams sending, acks two per step: held memory stays within the budget and every stream gets its turn', () => {
    const { budget, streams } = setup({ totalBytes: 16 * MiB, maxStreamBytes: 32 * MiB, firstChunkBytes: MiB }, 40);
    for (const s of streams) s.ask();
    const sent = streams.map(() => 0);
    const inflight: number[] = [];
    let peak = 0;
    for (let step = 0; step < 400; step++) {
      streams.forEach((s, i) => {
        if (!s.allowed) return;
        s.send(MiB);
        inflight.push(i);
        sent[i] = (sent[i] as number) + 1;
      });
      peak = Math.max(peak, held(budget));
      for (let k = 0; k < 2 && inflight.length > 0; k++) (streams[inflight.shift() as number] as Stream).handle.release(MiB);
    }
    expect(peak).toBeLessThanOrEqual(16 * MiB);
    expect(Math.min(...sent)).toBeGreaterThan(10);
    expect(Math.max(...sent) - Math.min(...sent)).toBeLessThanOrEqual(2);
  });
});

describe('in-flight budget: a request made before the message it follows is taken', () => {
  it('is kept, and answered once that message is taken (Readable asks before it hands a message on)', () => {
    const { streams } = setup({ totalBytes: 4 * MiB, maxStreamBytes: 4 * MiB, firstChunkBytes: MiB }, 1);
    const s = streams[0] as Stream;
    expect(s.ask()).toBe(true);
    expect(s.reads).toBe(1);
    // Asked again while its message is still on the way: not a second read at once...
    expect(s.ask()).toBe(false);
    expect(s.reads).toBe(1);
    s.allowed = false;
    s.handle.take(MiB);
    // ...but the next one, as soon as the first is taken.
    expect(s.reads).toBe(2);
    expect(s.allowed).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { InflightBudget } from '../../src/aggregator/inflight-budget.js';

class Stream {
  paused = false;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

const MiB = 1024 * 1024;

describe('in-flight budget shared by all streams', () => {
  it('one stream may hold up to maxStreamBytes, resumes at half', () => {
    const b = new InflightBudget({ totalBytes: 64 * MiB, maxStreamBytes: 4 * MiB, maxStreamChunks: 64 });
    const s = new Stream();
    const h = b.add(s);
    for (let i = 0; i < 3; i++) h.take(MiB);
    expect(s.paused).toBe(false);
    h.take(MiB);
    expect(s.paused).toBe(true);
    h.release(MiB);
    expect(s.paused).toBe(true);
    h.release(MiB);
    expect(s.paused).toBe(false);
  });

  it('splits the total between streams: memory does not grow with their number', () => {
    const b = new InflightBudget({ totalBytes: 16 * MiB, maxStreamBytes: 32 * MiB, maxStreamChunks: 64 });
    const streams = Array.from({ length: 50 }, () => new Stream());
    const handles = streams.map((s) => b.add(s));
    // Every stream sends as long as it is not paused.
    for (let round = 0; round < 10; round++) {
      handles.forEach((h, i) => {
        if (!(streams[i] as Stream).paused) h.take(MiB);
      });
    }
    // One chunk each at most (16 MiB / 50 streams is less than a chunk): the total is 50 MiB at most,
    // not 50 × 32 MiB; and each stream got its chunk through (none starves).
    expect(b.bytes).toBe(50 * MiB);
    expect(streams.every((s) => s.paused)).toBe(true);
    handles.forEach((h) => h.release(MiB));
    expect(b.bytes).toBe(0);
    expect(streams.every((s) => !s.paused)).toBe(true);
    expect(b.pausedStreams).toBe(0);
  });

  it('pauses every stream holding something while the total is spent, and resumes them as it frees', () => {
    const b = new InflightBudget({ totalBytes: 4 * MiB, maxStreamBytes: 4 * MiB, maxStreamChunks: 64 });
    const a = new Stream();
    const ha = b.add(a);
    const c = new Stream();
    const hc = b.add(c);
    ha.take(MiB);
    hc.take(MiB);
    expect([a.paused, c.paused]).toEqual([false, false]);
    ha.take(2 * MiB); // a: 3 MiB, over its 2 MiB share; total 4 MiB: spent
    expect(a.paused).toBe(true);
    hc.take(MiB); // c: 2 MiB, its share
    expect(c.paused).toBe(true);
    hc.release(MiB);
    hc.release(MiB);
    // c holds nothing: resumed at once; a still over half its share.
    expect([a.paused, c.paused]).toEqual([true, false]);
    ha.release(2 * MiB);
    expect(a.paused).toBe(false);
  });

  it('a stream with nothing in flight is never held back, however spent the total', () => {
    const b = new InflightBudget({ totalBytes: 2 * MiB, maxStreamBytes: 2 * MiB, maxStreamChunks: 64 });
    const big = new Stream();
    const hb = b.add(big);
    hb.take(8 * MiB);
    const small = new Stream();
    const hs = b.add(small);
    hs.take(MiB);
    expect(b.bytes).toBe(9 * MiB);
    hs.release(MiB);
    expect(small.paused).toBe(false);
  });

  it('a stream that goes away gives its share back to the others', () => {
    const b = new InflightBudget({ totalBytes: 4 * MiB, maxStreamBytes: 4 * MiB, maxStreamChunks: 64 });
    const a = new Stream();
    const ha = b.add(a);
    const gone = b.add(new Stream());
    ha.take(MiB);
    ha.take(MiB); // 2 MiB: its share of 4 MiB between two
    expect(a.paused).toBe(true);
    ha.release(MiB); // 1 MiB: half its share
    expect(a.paused).toBe(false);
    ha.take(MiB);
    expect(a.paused).toBe(true);
    gone.remove();
    // Alone now: a's share is 4 MiB, it holds 2 MiB (half): resumed.
    expect(a.paused).toBe(false);
  });

  it('counts chunks too', () => {
    const b = new InflightBudget({ totalBytes: 64 * MiB, maxStreamBytes: 64 * MiB, maxStreamChunks: 4 });
    const s = new Stream();
    const h = b.add(s);
    for (let i = 0; i < 4; i++) h.take(10);
    expect(s.paused).toBe(true);
    h.release(10);
    expect(s.paused).toBe(true);
    h.release(10);
    expect(s.paused).toBe(false);
  });
});

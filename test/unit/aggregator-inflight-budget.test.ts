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
    // Every stream sends as long as it is not paused; no ack goes out.
    for (let round = 0; round < 10; round++) {
      handles.forEach((h, i) => {
        if (!(streams[i] as Stream).paused) h.take(MiB);
      });
    }
    // Not 50 × 32 MiB, nor one chunk per stream: the budget, and every stream waits.
    expect(b.bytes).toBeLessThanOrEqual(16 * MiB);
    expect(streams.every((s) => s.paused)).toBe(true);
    handles.forEach((h) => {
      while (h.bytes > 0) h.release(MiB);
    });
    expect(b.bytes).toBe(0);
    // Not all 50 at once: the oldest paused go first, as many as the budget takes.
    const resumed = streams.filter((s) => !s.paused).length;
    expect(resumed).toBeGreaterThan(0);
    expect(resumed).toBeLessThanOrEqual(16);
    expect(streams.slice(0, resumed).every((s) => !s.paused)).toBe(true);
  });

  it('while the budget is spent (read-ahead counted), paused streams wait, and resume oldest first as it frees', () => {
    const b = new InflightBudget({ totalBytes: 8 * MiB, maxStreamBytes: 8 * MiB, maxStreamChunks: 64 });
    const [a, c, d] = [new Stream(), new Stream(), new Stream()];
    const [ha, hc, hd] = [b.add(a), b.add(c), b.add(d)];
    // Shares of 8/3 MiB: one chunk in flight plus one read ahead fit, two in flight do not.
    for (const h of [ha, hc, hd]) h.take(MiB);
    expect([a.paused, c.paused, d.paused]).toEqual([false, false, false]);
    for (const h of [ha, hc, hd]) h.take(MiB);
    expect([a.paused, c.paused, d.paused]).toEqual([true, true, true]);
    // 6 MiB in flight + 3 MiB read ahead by the paused streams: spent. One ack frees 1 MiB: still no
    // room for a resumed stream's next chunk.
    ha.release(MiB);
    expect([a.paused, c.paused, d.paused]).toEqual([true, true, true]);
    // Room for one more chunk: the oldest paused stream under half its share goes on.
    hc.release(MiB);
    expect([a.paused, c.paused, d.paused]).toEqual([false, true, true]);
    // It sends (the chunk grpc-js held for it), the next ack makes room for the next oldest.
    ha.take(MiB);
    hd.release(MiB);
    expect([c.paused, d.paused]).toEqual([false, true]);
  });

  it('many streams: read-ahead alone may pass the budget, a quarter of it still goes to chunks in flight, none starves', () => {
    const b = new InflightBudget({ totalBytes: 16 * MiB, maxStreamBytes: 32 * MiB, maxStreamChunks: 64 });
    const streams = Array.from({ length: 40 }, () => new Stream());
    const handles = streams.map((s) => b.add(s));
    const sent = streams.map(() => 0);
    const inflight: number[] = [];
    let peak = 0;
    // Streams send whenever they are not paused; acks go out oldest first, two per step.
    for (let step = 0; step < 400; step++) {
      streams.forEach((s, i) => {
        if (!s.paused) {
          (handles[i] as (typeof handles)[number]).take(MiB);
          inflight.push(i);
          sent[i] = (sent[i] as number) + 1;
        }
      });
      peak = Math.max(peak, b.bytes);
      for (let k = 0; k < 2 && inflight.length > 0; k++) (handles[inflight.shift() as number] as (typeof handles)[number]).release(MiB);
    }
    // The first round lets every stream through once (none was paused yet); after it, the budget holds.
    expect(peak).toBeLessThanOrEqual(40 * MiB);
    expect(Math.min(...sent)).toBeGreaterThan(10);
    expect(Math.max(...sent) - Math.min(...sent)).toBeLessThanOrEqual(2);
  });

  it('with nothing in flight anywhere, the oldest paused stream goes on', () => {
    const b = new InflightBudget({ totalBytes: 2 * MiB, maxStreamBytes: 2 * MiB, maxStreamChunks: 64 });
    const streams = Array.from({ length: 4 }, () => new Stream());
    const handles = streams.map((s) => b.add(s));
    handles.forEach((h) => h.take(MiB));
    expect(streams.every((s) => s.paused)).toBe(true);
    handles.forEach((h) => h.release(MiB));
    expect(b.bytes).toBe(0);
    expect(streams.map((s) => s.paused)).toEqual([false, true, true, true]);
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

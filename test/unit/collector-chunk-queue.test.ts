import { describe, expect, it } from 'vitest';
import { ChunkBuilder } from '../../src/collector/chunk-builder.js';
import type { SealedChunk } from '../../src/collector/chunk-builder.js';
import { ChunkDrain, ChunkQueue } from '../../src/collector/chunk-queue.js';
import { FileCursor } from '../../src/collector/file-cursor.js';
import { EMPTY_EVIDENCE, EMPTY_FINGERPRINT } from '../../src/collector/file-identity.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import { encodeBatchHeader } from '../../src/wire/entry-batch.js';
import { LineTime } from '../../src/wire/line-time.js';

function chunk(id: number, bytes: number): SealedChunk {
  return { id, payload: Buffer.alloc(bytes), entryCount: 1, ranges: [] };
}

/** A scheduler run by hand: tasks wait until `run()`. */
class ManualScheduler {
  readonly tasks: Array<() => void> = [];
  readonly schedule = (task: () => void): void => {
    this.tasks.push(task);
  };

  run(): void {
    for (let t = this.tasks.shift(); t !== undefined; t = this.tasks.shift()) t();
  }
}

describe('ChunkQueue', () => {
  it('never drops: past its bound it still takes every chunk, says it is full, and counts what it holds', () => {
    const q = new ChunkQueue(100);
    q.push(chunk(1, 60));
    expect(q.full).toBe(false);
    q.push(chunk(2, 60));
    q.push(chunk(3, 60));
    expect([q.full, q.heldChunks, q.heldBytes, q.pushedChunks, q.peakBytes]).toEqual([true, 3, 180, 3, 180]);
    expect([q.shift()?.id, q.shift()?.id]).toEqual([1, 2]);
    expect([q.full, q.heldChunks, q.heldBytes, q.peakBytes]).toEqual([false, 1, 60, 180]);
    expect(q.shift()?.id).toBe(3);
    expect(q.shift()).toBeUndefined();
    expect([q.heldChunks, q.heldBytes]).toEqual([0, 0]);
  });

  it('keeps order through many pushes and shifts', () => {
    const q = new ChunkQueue(1 << 30);
    const out: number[] = [];
    for (let i = 0; i < 5000; i++) {
      q.push(chunk(i, 1));
      if (i % 3 === 2) for (let j = 0; j < 2; j++) out.push((q.shift() as SealedChunk).id);
    }
    for (let c = q.shift(); c !== undefined; c = q.shift()) out.push(c.id);
    expect(out).toEqual(Array.from({ length: 5000 }, (_, i) => i));
  });

  it('refuses a bound of nothing', () => {
    expect(() => new ChunkQueue(0)).toThrow(RangeError);
  });
});

describe('ChunkDrain', () => {
  it('hands chunks to the sink outside the push (one scheduled drain per burst), in order', () => {
    const q = new ChunkQueue(1000);
    const sched = new ManualScheduler();
    const sent: number[] = [];
    const moved: number[] = [];
    new ChunkDrain(q, { enqueue: (c) => sent.push(c.id) }, sched.schedule, (c) => moved.push(c.id));
    q.push(chunk(1, 10));
    q.push(chunk(2, 10));
    expect(sent).toEqual([]);
    expect(sched.tasks.length).toBe(1);
    sched.run();
    expect(sent).toEqual([1, 2]);
    expect(moved).toEqual([1, 2]);
    expect(q.heldChunks).toBe(0);
  });

  it('flush() drains at once (shutdown: before waiting for acknowledgements)', () => {
    const q = new ChunkQueue(1000);
    const sched = new ManualScheduler();
    const sent: number[] = [];
    const drain = new ChunkDrain(q, { enqueue: (c) => sent.push(c.id) }, sched.schedule);
    q.push(chunk(1, 10));
    drain.flush();
    expect(sent).toEqual([1]);
    sched.run();
    expect(sent).toEqual([1]);
    q.push(chunk(2, 10));
    expect(sched.tasks.length).toBe(1);
  });

  it('from the chunk builder in virtual time: a chunk sealed by COLLECTOR_BUFFER_TIMEOUT reaches the sink through the queue', () => {
    const clock = new ManualClock();
    const q = new ChunkQueue(1 << 20);
    const sched = new ManualScheduler();
    const sent: SealedChunk[] = [];
    new ChunkDrain(q, { enqueue: (c) => sent.push(c) }, sched.schedule);
    const builder = new ChunkBuilder(encodeBatchHeader('c', []), { maxBytes: 1 << 20, timeoutMs: 1000 }, clock, (c) => q.push(c));
    const cursor = new FileCursor('f', '/l/a.log', 1, 1, EMPTY_FINGERPRINT, 0, EMPTY_EVIDENCE);
    const line = Buffer.from('hello');
    builder.addLine(cursor, line, 0, 5, 0, LineTime.fromMillis(0), 0);
    builder.noteRange(cursor, 6, EMPTY_EVIDENCE, 1, 5);
    clock.advance(999);
    expect(q.heldChunks).toBe(0);
    clock.advance(1);
    expect([q.heldChunks, sent.length]).toEqual([1, 0]);
    sched.run();
    expect(sent.map((c) => [c.entryCount, c.ranges[0]?.endOffset])).toEqual([[1, 6]]);
    expect(q.heldBytes).toBe(0);
  });
});

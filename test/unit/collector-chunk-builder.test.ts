import { describe, expect, it } from 'vitest';
import { ChunkBuilder, chunkMemory } from '../../src/collector/chunk-builder.js';
import type { SealedChunk } from '../../src/collector/chunk-builder.js';
import { FileCursor } from '../../src/collector/file-cursor.js';
import { EMPTY_EVIDENCE, EMPTY_FINGERPRINT } from '../../src/collector/file-identity.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import type { TimerHandle } from '../../src/util/clock.js';
import { CHUNK_HEADROOM, CHUNK_TAILROOM } from '../../src/wire/chunk-message.js';
import { decodeEntries, encodeBatchHeader } from '../../src/wire/entry-batch.js';
import { LineTime } from '../../src/wire/line-time.js';

/** A ManualClock that counts the timers set and cleared. */
class CountingClock extends ManualClock {
  set = 0;
  cleared = 0;
  override setTimeout(fn: () => void, ms: number): TimerHandle {
    this.set++;
    return super.setTimeout(fn, ms);
  }
  override clearTimeout(handle: TimerHandle): void {
    this.cleared++;
    super.clearTimeout(handle);
  }
}

function fixture(maxBytes: number, timeoutMs = 1000, spareBuffers?: number): { clock: CountingClock; builder: ChunkBuilder; chunks: SealedChunk[]; cursor: FileCursor } {
  const clock = new CountingClock();
  const chunks: SealedChunk[] = [];
  const builder = new ChunkBuilder(encodeBatchHeader('c', []), { maxBytes, timeoutMs, ...(spareBuffers === undefined ? {} : { spareBuffers }) }, clock, (c) => chunks.push(c));
  const cursor = new FileCursor('f', '/l/a.log', 1, 1, EMPTY_FINGERPRINT, 0, EMPTY_EVIDENCE);
  return { clock, builder, chunks, cursor };
}

const line = Buffer.alloc(100, 0x61);
const time = LineTime.fromMillis(1_700_000_000_000);

function add(fx: ReturnType<typeof fixture>, offset: number): void {
  if (!fx.builder.fits(fx.cursor, 100, offset)) fx.builder.seal();
  fx.builder.addLine(fx.cursor, line, 0, 100, offset, time, 0);
  if (fx.builder.full) fx.builder.seal();
}

describe('ChunkBuilder', () => {
  it('sets no timer per chunk: chunks sealed by size within one timeout share one timer', () => {
    const fx = fixture(4096);
    for (let i = 0; i < 2000; i++) add(fx, i * 101);
    expect(fx.chunks.length).toBeGreaterThan(50);
    expect([fx.clock.set, fx.clock.cleared]).toEqual([1, 0]);
  });

  it('still seals a chunk timeoutMs after its first line when that chunk began after an earlier seal', () => {
    const fx = fixture(1 << 20, 1000);
    add(fx, 0);
    fx.clock.advance(400);
    fx.builder.seal();
    expect(fx.chunks.length).toBe(1);
    fx.clock.advance(100);
    add(fx, 101); // first line of the next chunk at t = 500: due at t = 1500
    fx.clock.advance(499); // t = 999: the first timer fires and re-arms for the rest
    expect(fx.chunks.length).toBe(1);
    fx.clock.advance(500); // t = 1499
    expect(fx.chunks.length).toBe(1);
    fx.clock.advance(1); // t = 1500
    expect(fx.chunks.length).toBe(2);
    expect(decodeEntries(fx.chunks[1]?.payload as Buffer).map((e) => e.offset)).toEqual([101]);
    // Nothing open: the timer is not re-armed.
    fx.clock.advance(5000);
    expect(fx.clock.pendingTimers).toBe(0);
    expect(fx.chunks.length).toBe(2);
  });

  it('seals full chunks as views of one buffer each, with room for the Chunk fields, and counts that buffer as their memory', () => {
    const fx = fixture(64 * 1024);
    for (let i = 0; i < 2000; i++) add(fx, i * 101);
    fx.builder.seal();
    const full = fx.chunks.slice(0, -1);
    expect(full.length).toBeGreaterThan(2);
    for (const c of full) {
      const backing = c.backing as Buffer;
      expect(c.payload.buffer).toBe(backing.buffer);
      expect(c.payload.byteOffset - backing.byteOffset).toBe(CHUNK_HEADROOM);
      expect(backing.length).toBe(64 * 1024);
      expect(chunkMemory(c)).toBe(backing.length);
      expect(c.payload.length).toBeLessThanOrEqual(64 * 1024 - CHUNK_HEADROOM - CHUNK_TAILROOM);
    }
    expect(new Set(full.map((c) => c.backing?.buffer)).size).toBe(full.length);
    expect(fx.chunks.reduce((n, c) => n + decodeEntries(c.payload).length, 0)).toBe(2000);
  });

  it('reuses the buffer of a released (acknowledged) chunk for a later one, and only such a buffer', () => {
    const fx = fixture(64 * 1024);
    let offset = 0;
    while (fx.chunks.length < 2) add(fx, (offset += 101));
    const [first, second] = fx.chunks as [SealedChunk, SealedChunk];
    const secondBytes = Buffer.from(second.payload);
    fx.builder.release(first);
    while (fx.chunks.length < 4) add(fx, (offset += 101));
    // The third chunk was open (in a new buffer) when the first was released; the fourth takes its buffer.
    expect(fx.chunks[2]?.backing?.buffer).not.toBe(first.backing?.buffer);
    expect(fx.chunks[3]?.backing?.buffer).toBe(first.backing?.buffer);
    expect(second.payload.equals(secondBytes)).toBe(true);
    // A chunk that is not a full buffer (copied out) gives nothing back.
    fx.builder.seal();
    add(fx, (offset += 101));
    fx.builder.seal();
    const small = fx.chunks[fx.chunks.length - 1] as SealedChunk;
    expect(small.backing?.length).toBeLessThan(1024);
    fx.builder.release(small);
    while (fx.chunks.length < 8) add(fx, (offset += 101));
    expect(fx.chunks.slice(-2).map((c) => c.backing?.length)).toEqual([64 * 1024, 64 * 1024]);
  });

  it('keeps as many released buffers as spareBuffers says, so chunks in flight come back as buffers, not garbage', () => {
    const reused = (spare: number | undefined): number => {
      const fx = fixture(64 * 1024, 1000, spare);
      let offset = 0;
      while (fx.chunks.length < 6) add(fx, (offset += 101));
      const released = fx.chunks.slice(0, 6);
      for (const c of released) fx.builder.release(c);
      // The seventh chunk was open when they were released; the next six take buffers.
      while (fx.chunks.length < 13) add(fx, (offset += 101));
      const old = new Set(released.map((c) => c.backing?.buffer));
      return fx.chunks.slice(7, 13).filter((c) => old.has(c.backing?.buffer)).length;
    };
    expect(reused(undefined)).toBe(2);
    expect(reused(6)).toBe(6);
  });
});

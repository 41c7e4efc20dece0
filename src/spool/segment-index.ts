import type { DeliveredPosition } from './spool-types.js';

/**
 * The index of the live segments: per segment its size, durable end, sealed flag, damaged ranges and
 * record offsets (with cumulative entry counts, for pending-entry counts and entries-before lookups).
 * The functions at the top are pure index math; `SegmentIndex` holds the live segments and the bytes
 * they take on disk. Only the spool's writer side (group commit, delivery, recovery) changes it;
 * readers see it through `SegmentView`.
 */

export interface ByteSpan {
  readonly start: number;
  readonly end: number;
}

/** What a reader may see of a segment: read only. */
export interface SegmentView {
  readonly number: number;
  /** Bytes written to the file. */
  readonly size: number;
  /** Bytes known to be on stable storage: readers never read past this. */
  readonly durableEnd: number;
  /** No more appends go here. Every segment but the last is sealed. */
  readonly sealed: boolean;
  /** Damaged byte ranges, ascending: readers jump from `start` to `end`. */
  readonly badRanges: readonly ByteSpan[];
}

export interface SegmentState extends SegmentView {
  size: number;
  durableEnd: number;
  sealed: boolean;
  readonly badRanges: ByteSpan[];
  /** When it was sealed (its last append), ms since the epoch: the age retention counts from. */
  sealedAtMs?: number;
  /** Start offsets of the indexed records, and the entries up to and including each. */
  readonly offsets: number[];
  readonly cumEntries: number[];
}

export function newSegment(number: number, size: number): SegmentState {
  return { number, size, durableEnd: size, sealed: false, badRanges: [], offsets: [], cumEntries: [] };
}

export function indexRecord(seg: SegmentState, offset: number, entries: number): void {
  seg.offsets.push(offset);
  seg.cumEntries.push(totalEntries(seg) + entries);
}

/** Entries of `seg` in records that start before `offset`. */
export function entriesBefore(seg: SegmentState, offset: number): number {
  let lo = 0;
  let hi = seg.offsets.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((seg.offsets[mid] as number) < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? 0 : (seg.cumEntries[lo - 1] as number);
}

export function totalEntries(seg: SegmentState): number {
  return seg.cumEntries.length === 0 ? 0 : (seg.cumEntries[seg.cumEntries.length - 1] as number);
}

/** Entries appended and not delivered, over `segments` (ascending), never below 0. */
export function pendingEntries(segments: Iterable<SegmentState>, delivered: DeliveredPosition): number {
  let pending = 0;
  for (const seg of segments) {
    if (seg.number < delivered.segment) continue;
    pending += totalEntries(seg);
    if (seg.number === delivered.segment) pending -= entriesBefore(seg, delivered.offset) + delivered.entry;
  }
  return Math.max(0, pending);
}

/** Whether everything in `seg` is before the delivered position. */
export function fullyDelivered(seg: SegmentView, delivered: DeliveredPosition): boolean {
  return seg.number < delivered.segment || (seg.number === delivered.segment && delivered.offset >= seg.size);
}

/** Adds a damaged range, keeping them ascending. */
export function addBadRange(seg: SegmentState, start: number, end: number): void {
  seg.badRanges.push({ start, end });
  seg.badRanges.sort((a, b) => a.start - b.start);
}

/** The live segments by number (ascending; the last one is the active one) and their bytes on disk. */
export class SegmentIndex {
  private readonly segments = new Map<number, SegmentState>();
  private activeSegment: SegmentState;
  private bytes = 0;

  /** `segments`: ascending and not empty; the last one is the active one. */
  constructor(segments: readonly SegmentState[]) {
    for (const s of segments) this.put(s);
    this.activeSegment = segments[segments.length - 1] as SegmentState;
  }

  get active(): SegmentState {
    return this.activeSegment;
  }

  /** Bytes of the live segment files. */
  get diskBytes(): number {
    return this.bytes;
  }

  get count(): number {
    return this.segments.size;
  }

  get(n: number): SegmentState | undefined {
    return this.segments.get(n);
  }

  /** The first live segment after `n`, if any. */
  after(n: number): SegmentState | undefined {
    let best: SegmentState | undefined;
    for (const s of this.segments.values()) if (s.number > n && (best === undefined || s.number < best.number)) best = s;
    return best;
  }

  /** Live segments, ascending. */
  all(): SegmentState[] {
    return [...this.segments.values()].sort((a, b) => a.number - b.number);
  }

  /** Seals the active segment (at `nowMs`) and makes `seg` (new, empty) the active one. */
  roll(seg: SegmentState, nowMs: number): void {
    this.activeSegment.sealed = true;
    this.activeSegment.sealedAtMs = nowMs;
    this.put(seg);
    this.activeSegment = seg;
  }

  /** `bytes` more were written to the active segment (not durable yet). */
  grow(bytes: number): void {
    this.activeSegment.size += bytes;
    this.bytes += bytes;
  }

  /** The active segment was cut back to `size` bytes on disk. */
  cut(size: number): void {
    const seg = this.activeSegment;
    this.bytes -= seg.size - size;
    seg.size = size;
    seg.durableEnd = Math.min(seg.durableEnd, size);
    const keep = seg.offsets.findIndex((o) => o >= size);
    if (keep !== -1) {
      seg.offsets.length = keep;
      seg.cumEntries.length = keep;
    }
  }

  /** Takes a segment out of the index (readers no longer see it) before its file is deleted. */
  detach(seg: SegmentState): void {
    this.segments.delete(seg.number);
  }

  /** A detached segment's file is deleted: its bytes are gone. */
  deleted(seg: SegmentState): void {
    this.bytes -= seg.size;
  }

  /** A detached segment's file could not be deleted: it is live again. */
  reattach(seg: SegmentState): void {
    this.segments.set(seg.number, seg);
  }

  private put(seg: SegmentState): void {
    this.segments.set(seg.number, seg);
    this.bytes += seg.size;
  }
}

import { join } from 'node:path';
import { comparePositions } from './delivered-file.js';
import { SEGMENT_HEADER_BYTES, segmentFileName } from './segment-format.js';
import { indexRecord, newSegment } from './segment-index.js';
import type { SegmentState } from './segment-index.js';
import type { SpoolLayout } from './spool-layout.js';
import type { DeliveredPosition } from './spool-types.js';

/**
 * What recovery decides about a spool directory, as a pure function of its layout (spool-layout.ts):
 * which delivered segments to delete, whether to cut a torn tail, which damaged ranges readers skip,
 * where delivery resumes, and whether a fresh active segment is needed. `Spool.open` carries the plan
 * out (recovery.ts); `Spool.inspect` reports it without touching anything.
 */

export interface RecoveryNote {
  readonly level: 'warn' | 'error';
  readonly obj: object;
  readonly msg: string;
}

/** The torn tail of the last segment: cut it to `to` (or rewrite the header when that is bad). */
export interface TailRepair {
  readonly segment: number;
  readonly to: number;
  readonly rewriteHeader: boolean;
}

export interface RecoveryPlan {
  /** Segment files wholly before the delivered one: a crash came between persisting the position and deleting them. */
  readonly remove: readonly number[];
  readonly repair?: TailRepair;
  /** The live segments as they are once repaired, indexed, ascending; every one but the last sealed. */
  readonly segments: SegmentState[];
  /** A new, empty active segment to create after `segments` (none left, or all before the delivered position). */
  readonly create?: number;
  /** Where delivery resumes. */
  readonly delivered: DeliveredPosition;
  readonly corruptRanges: number;
  /** What to log about it, in order. */
  readonly notes: readonly RecoveryNote[];
}

/** The start of the last record before `offset` (the segment's first record offset when none). */
export function recordStartBefore(offsets: readonly number[], offset: number): number {
  let back = SEGMENT_HEADER_BYTES;
  for (const o of offsets) {
    if (o >= offset) break;
    back = o;
  }
  return back;
}

export function planRecovery(layout: SpoolLayout): RecoveryPlan {
  const { dir } = layout;
  const notes: RecoveryNote[] = [];
  if (layout.deliveredProblem !== undefined) {
    notes.push({ level: 'error', obj: { dir }, msg: `spool: ${layout.deliveredProblem}; delivering again from the oldest segment` });
  }
  let delivered = layout.delivered;
  const remove: number[] = [];
  const live = layout.segments.filter((s) => {
    if (s.number >= delivered.segment && s.scan !== undefined) return true;
    remove.push(s.number);
    return false;
  });
  const segments: SegmentState[] = [];
  let corruptRanges = 0;
  let repair: TailRepair | undefined;
  live.forEach((file, i) => {
    const n = file.number;
    const scan = file.scan as NonNullable<typeof file.scan>;
    const path = join(dir, segmentFileName(n));
    const isLast = i === live.length - 1;
    const seg = newSegment(n, file.size);
    seg.sealed = !isLast;
    if (!isLast) seg.sealedAtMs = file.mtimeMs;
    for (let k = 0; k < scan.offsets.length; k++) indexRecord(seg, scan.offsets[k] as number, scan.entries[k] as number);
    for (const c of scan.corrupt) {
      corruptRanges++;
      seg.badRanges.push({ start: c.start, end: c.end });
      notes.push({
        level: 'error',
        obj: { dir, segment: n, file: path, start: c.start, end: c.end, reason: c.reason },
        msg: 'spool: CORRUPT byte range in the middle of a segment; readers skip it',
      });
    }
    if (scan.tail !== undefined) {
      const range = { dir, segment: n, file: path, start: scan.tail.start, end: scan.tail.end, reason: scan.tail.reason };
      if (isLast) {
        // The tail of the last segment: a crash during an append that was never acknowledged.
        notes.push({ level: 'warn', obj: range, msg: 'spool: truncating a torn tail of the last segment' });
        const rewriteHeader = scan.badHeader !== undefined;
        repair = { segment: n, to: rewriteHeader ? SEGMENT_HEADER_BYTES : scan.validEnd, rewriteHeader };
        seg.size = repair.to;
        seg.durableEnd = seg.size;
      } else {
        corruptRanges++;
        seg.badRanges.push({ start: scan.tail.start, end: scan.tail.end });
        notes.push({ level: 'error', obj: range, msg: 'spool: CORRUPT end of an older segment (no valid record after it); readers skip it' });
      }
    }
    if (n === delivered.segment && delivered.offset > SEGMENT_HEADER_BYTES && delivered.offset < seg.size && !seg.offsets.includes(delivered.offset)) {
      // Not a record boundary (a damaged position file?): go back to the record containing it.
      const back = recordStartBefore(seg.offsets, delivered.offset);
      notes.push({
        level: 'warn',
        obj: { dir, delivered, resumeAt: back },
        msg: 'spool: delivered position is not a record boundary; delivering again from the record before it',
      });
      delivered = { segment: n, offset: back, entry: 0 };
    }
    segments.push(seg);
  });

  // Segment numbers only grow, so a delivered position never points into a newer segment by mistake.
  const last = segments[segments.length - 1];
  const create = last === undefined || last.number < delivered.segment ? Math.max(last?.number ?? 0, delivered.segment) + 1 : undefined;
  const first = segments[0]?.number ?? (create as number);
  if (comparePositions(delivered, { segment: first, offset: SEGMENT_HEADER_BYTES, entry: 0 }) < 0) {
    delivered = { segment: first, offset: SEGMENT_HEADER_BYTES, entry: 0 };
  } else {
    const ds = segments.find((s) => s.number === delivered.segment);
    if (ds !== undefined && delivered.offset > ds.size) {
      notes.push({
        level: 'warn',
        obj: { dir, delivered, segmentBytes: ds.size },
        msg: 'spool: delivered position beyond the end of its segment; clamping',
      });
      delivered = { segment: ds.number, offset: ds.size, entry: 0 };
    }
  }
  const plan = { remove, segments, delivered, corruptRanges, notes };
  return {
    ...plan,
    ...(repair === undefined ? {} : { repair }),
    ...(create === undefined ? {} : { create }),
  };
}

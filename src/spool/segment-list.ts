import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeEntries } from '../wire/entry-batch.js';
import { segmentFileName } from './segment-format.js';
import { readRecordAt } from './segment-scan.js';
import { readSpoolLayout } from './spool-layout.js';
import type { SegmentFile, SpoolLayout } from './spool-layout.js';
import type { DeliveredPosition, RecordPosition } from './spool-types.js';

/**
 * The spool as an archive: one line of metadata per segment file, read without the writer's lock (safe
 * beside a running aggregator; reusable by anything that reads sealed segments: `spool list`, replay,
 * export). Nothing here writes.
 */

/** pending: holds entries not delivered yet; retained: delivered and sealed, kept on disk; delivered: the active segment, all delivered. */
export type SegmentStatus = 'pending' | 'retained' | 'delivered';

export interface SegmentInfo {
  readonly segment: number;
  readonly file: string;
  readonly bytes: number;
  /** Last append (file modification time), ms since the epoch. */
  readonly modifiedMs: number;
  /** Start of the first and of the last record; undefined when the segment holds none. */
  readonly firstPosition: RecordPosition | undefined;
  readonly lastPosition: RecordPosition | undefined;
  /** End of the last valid record. */
  readonly endPosition: RecordPosition;
  readonly records: number;
  readonly entries: number;
  /** Time of the first entry of the first record and of the last entry of the last record (ns since the epoch), when readable. */
  readonly firstEntryTimeNs: bigint | undefined;
  readonly lastEntryTimeNs: bigint | undefined;
  /** Not the last segment: nothing is appended to it any more. */
  readonly sealed: boolean;
  readonly status: SegmentStatus;
  /** Damaged ranges found while walking it. */
  readonly corruptRanges: number;
}

/** Whether everything in a segment ending at `end` is before `delivered`. */
export function segmentDelivered(segment: number, end: number, delivered: DeliveredPosition): boolean {
  return segment < delivered.segment || (segment === delivered.segment && delivered.offset >= end);
}

/** The status of a segment (pure). */
export function segmentStatus(segment: number, end: number, sealed: boolean, delivered: DeliveredPosition): SegmentStatus {
  if (!segmentDelivered(segment, end, delivered)) return 'pending';
  return sealed ? 'retained' : 'delivered';
}

/** Time of the first (or last) entry of a record; undefined when unreadable or empty. */
async function entryTime(fh: FileHandle, offset: number, size: number, which: 'first' | 'last'): Promise<bigint | undefined> {
  const r = await readRecordAt(fh, offset, size);
  if (!r.ok) return undefined;
  try {
    const entries = decodeEntries(r.payload);
    const e = which === 'first' ? entries[0] : entries[entries.length - 1];
    return e?.timeUnixNano;
  } catch {
    return undefined;
  }
}

async function describe(layout: SpoolLayout, file: SegmentFile, sealed: boolean): Promise<SegmentInfo> {
  const n = file.number;
  const path = join(layout.dir, segmentFileName(n));
  const scan = file.scan;
  const offsets = scan?.offsets ?? [];
  const first = offsets[0];
  const last = offsets[offsets.length - 1];
  let firstEntryTimeNs: bigint | undefined;
  let lastEntryTimeNs: bigint | undefined;
  if (first !== undefined && last !== undefined) {
    try {
      const fh = await open(path, 'r');
      try {
        firstEntryTimeNs = await entryTime(fh, first, file.size, 'first');
        lastEntryTimeNs = await entryTime(fh, last, file.size, 'last');
      } finally {
        await fh.close();
      }
    } catch {
      // deleted meanwhile (a running aggregator delivered it): no times
    }
  }
  const end = scan?.validEnd ?? file.size;
  return {
    segment: n,
    file: path,
    bytes: file.size,
    modifiedMs: file.mtimeMs,
    firstPosition: first === undefined ? undefined : { segment: n, offset: first },
    lastPosition: last === undefined ? undefined : { segment: n, offset: last },
    endPosition: { segment: n, offset: end },
    records: offsets.length,
    entries: (scan?.entries ?? []).reduce((a, b) => a + b, 0),
    firstEntryTimeNs,
    lastEntryTimeNs,
    sealed,
    status: segmentStatus(n, end, sealed, layout.delivered),
    corruptRanges: (scan?.corrupt.length ?? 0) + (scan?.tail !== undefined && sealed ? 1 : 0),
  };
}

/** One SegmentInfo per segment file of `dir`, ascending, without the lock. */
export async function listSegments(dir: string): Promise<SegmentInfo[]> {
  const layout = await readSpoolLayout(dir, { walkDelivered: true });
  const out: SegmentInfo[] = [];
  for (let i = 0; i < layout.segments.length; i++) {
    out.push(await describe(layout, layout.segments[i] as SegmentFile, i < layout.segments.length - 1));
  }
  return out;
}

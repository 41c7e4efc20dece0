import { LineFlag } from './entry-batch.js';
import type { ScanObserver } from './entry-batch.js';
import { EntryBatchWalker, Met } from './entry-batch-walker.js';

/**
 * Entry identity: every entry carries (collector_id, file_id, offset). What a stage has already
 * taken, per collector and file, is kept as a few ranges of entry offsets; an entry whose offset lies
 * in one of them is a replay (a chunk resent after a lost ack, a spool record delivered again after
 * a crash) and can be dropped without losing anything.
 *
 * Ranges are merged only when nothing can lie between them: the entry after one at offset `o` with
 * `len` bytes starts exactly at `o + len` (a PARTIAL piece, or a last line without newline) or at
 * `o + len + 1` (after its "\n"); a range starting there continues the one before. Any other gap
 * (a chunk refused and resent after later ones were accepted; a "\r\n" line, whose next offset is
 * `o + len + 2` and cannot be told from a missing empty line) keeps the ranges apart, so an entry in
 * a gap is never mistaken for a replay. A file's new generation (after truncation) gets a new file_id
 * from the collector, so its offsets starting at 0 again are new entries, not replays.
 */
export interface OffsetRange {
  /** Offset of the first entry. */
  lo: number;
  /** Offset of the last entry. */
  hi: number;
  /** Where the entry after the last one starts, if it follows without a gap (see above). */
  next: number;
}

/** Where the entry after this one starts when nothing lies between them. */
export function nextOffset(offset: number, lineBytes: number, flags: number): number {
  return (flags & (LineFlag.Partial | LineFlag.NoNewline)) !== 0 ? offset + lineBytes : offset + lineBytes + 1;
}

/** Most separate ranges kept per file; beyond it the lowest is forgotten (its replays pass again). */
export const DEFAULT_RANGES_PER_FILE = 64;

/**
 * The ranges of one file, ascending and disjoint. `add` merges adjacent and overlapping ones. Bounded:
 * past `maxRanges` the lowest range is dropped (forgetting is safe: at worst a replay passes).
 */
export class FileRanges {
  readonly ranges: OffsetRange[] = [];

  constructor(private readonly maxRanges = DEFAULT_RANGES_PER_FILE) {}

  /** Whether an entry at `offset` was taken. */
  has(offset: number): boolean {
    // Searched from the top: replays are nearly always of the latest entries.
    for (let i = this.ranges.length - 1; i >= 0; i--) {
      const r = this.ranges[i] as OffsetRange;
      if (offset > r.hi) return false;
      if (offset >= r.lo) return true;
    }
    return false;
  }

  /** Whether any offset in [lo, hi] lies in a range (a fast check for a whole run of entries). */
  overlaps(lo: number, hi: number): boolean {
    for (let i = this.ranges.length - 1; i >= 0; i--) {
      const r = this.ranges[i] as OffsetRange;
      if (lo > r.hi) return false;
      if (hi >= r.lo) return true;
    }
    return false;
  }

  /** Records a contiguous run of entries [lo, hi] whose successor starts at `next`. */
  add(lo: number, hi: number, next: number): void {
    const rs = this.ranges;
    let i = rs.length;
    while (i > 0 && (rs[i - 1] as OffsetRange).lo > lo) i--;
    rs.splice(i, 0, { lo, hi, next });
    // Merge with the previous range, then swallow the following ones while they touch.
    const k = i > 0 && touches(rs[i - 1] as OffsetRange, rs[i] as OffsetRange) ? i - 1 : i;
    const cur = rs[k] as OffsetRange;
    if (k !== i) {
      const added = rs[i] as OffsetRange;
      if (added.hi > cur.hi) {
        cur.hi = added.hi;
        cur.next = added.next;
      }
      rs.splice(i, 1);
    }
    while (k + 1 < rs.length && touches(cur, rs[k + 1] as OffsetRange)) {
      const after = rs[k + 1] as OffsetRange;
      if (after.hi > cur.hi) {
        cur.hi = after.hi;
        cur.next = after.next;
      }
      rs.splice(k + 1, 1);
    }
    while (rs.length > this.maxRanges) rs.shift();
  }
}

/** `b` (starting at or after `a`) overlaps `a` or starts where `a`'s successor starts. */
function touches(a: OffsetRange, b: OffsetRange): boolean {
  return b.lo <= a.hi || b.lo === a.next;
}

/**
 * The ranges of every (collector, file) a stage has taken, bounded: past `maxFiles` files the least
 * recently touched is forgotten, and `onEvict` is called (a metric). Forgetting is safe: at worst a
 * replay of that file passes again (at-least-once for it).
 */
export class IdentityRanges {
  private readonly files = new Map<string, FileRanges>();

  constructor(
    private readonly maxFiles: number,
    private readonly onEvict: () => void = () => undefined,
    private readonly maxRangesPerFile = DEFAULT_RANGES_PER_FILE,
  ) {}

  get size(): number {
    return this.files.size;
  }

  /** The file's ranges, if any (touches it: most recently used). */
  get(collectorId: string, fileId: string): FileRanges | undefined {
    const key = fileKey(collectorId, fileId);
    const f = this.files.get(key);
    if (f !== undefined) {
      this.files.delete(key);
      this.files.set(key, f);
    }
    return f;
  }

  add(collectorId: string, fileId: string, lo: number, hi: number, next: number): void {
    const key = fileKey(collectorId, fileId);
    let f = this.files.get(key);
    if (f === undefined) {
      f = new FileRanges(this.maxRangesPerFile);
      while (this.files.size >= this.maxFiles) {
        const oldest = this.files.keys().next().value as string;
        this.files.delete(oldest);
        this.onEvict();
      }
    } else this.files.delete(key);
    this.files.set(key, f);
    f.add(lo, hi, next);
  }

  /** A plain copy, for persisting: [collectorId, fileId, ranges]. */
  toJSON(): Array<[string, string, OffsetRange[]]> {
    const out: Array<[string, string, OffsetRange[]]> = [];
    for (const [key, f] of this.files) {
      const sep = key.indexOf('\u0000');
      out.push([key.slice(0, sep), key.slice(sep + 1), f.ranges.map((r) => ({ ...r }))]);
    }
    return out;
  }
}

function fileKey(collectorId: string, fileId: string): string {
  return `${collectorId}\u0000${fileId}`;
}

/** A run of one file's consecutive entries in an EntryBatch. */
export interface IdentityRun {
  readonly fileId: string;
  readonly lo: number;
  readonly hi: number;
  readonly next: number;
  readonly count: number;
}

/**
 * The identity runs of an EntryBatch: a collector's FileRun holds consecutive lines of its file, so
 * each is one run (an offset that does not ascend starts another) without building an object per
 * entry (the ingest hot path). The shared walk (entry-batch-walker.ts), so Line messages and the
 * lines of LineBlocks count alike. Throws WireError on malformed input (callers pass batches already
 * validated by scanEntryBatch).
 */
export function identityRuns(buf: Buffer): { collectorId: string; runs: IdentityRun[] } {
  const w = new EntryBatchWalker(buf);
  const found = new IdentityCollector();
  for (let met = w.next(); met !== Met.End; met = w.next()) {
    if (met === Met.Line) {
      w.readLineData();
      found.line(w.offset, w.dataEnd - w.dataStart, w.flags);
    } else if (met === Met.CollectorId) found.collectorId(buf, w.start, w.end);
    else if (met === Met.Run) found.run();
    else if (met === Met.FileId) found.fileId(buf, w.start, w.end);
  }
  return found.result();
}

/**
 * Builds the identity runs from what a walk meets: identityRuns' own walk, or the admission scan's
 * (as a ScanObserver), so the ingest needs no second walk. `result()` once the walk is over.
 */
export class IdentityCollector implements ScanObserver {
  private collector = '';
  private readonly runs: IdentityRun[] = [];
  private inRun = false;
  private fileIdOfRun = '';
  private own: Array<Omit<IdentityRun, 'fileId'>> = [];
  private lo = 0;
  private hi = 0;
  private next = 0;
  private count = 0;

  collectorId(buf: Buffer, start: number, end: number): void {
    this.collector = buf.toString('utf8', start, end);
  }

  run(): void {
    this.closeRun();
    this.inRun = true;
  }

  fileId(buf: Buffer, start: number, end: number): void {
    this.fileIdOfRun = buf.toString('utf8', start, end);
  }

  line(offset: number, dataBytes: number, flags: number): void {
    if (this.count > 0 && offset <= this.hi) {
      // Not ascending (never from a collector): a run of its own, so no range spans a gap.
      this.own.push({ lo: this.lo, hi: this.hi, next: this.next, count: this.count });
      this.count = 0;
    }
    if (this.count === 0) this.lo = offset;
    this.hi = offset;
    this.next = nextOffset(offset, dataBytes, flags);
    this.count++;
  }

  result(): { collectorId: string; runs: IdentityRun[] } {
    this.closeRun();
    return { collectorId: this.collector, runs: this.runs };
  }

  private closeRun(): void {
    if (!this.inRun) return;
    if (this.count > 0) this.own.push({ lo: this.lo, hi: this.hi, next: this.next, count: this.count });
    // file_id may come after the lines on the wire: the runs get it once the FileRun is read.
    for (const o of this.own) this.runs.push({ fileId: this.fileIdOfRun, ...o });
    this.inRun = false;
    this.fileIdOfRun = '';
    this.own = [];
    this.count = 0;
  }
}

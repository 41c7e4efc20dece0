import { listStoredSegments, readStoredRecords } from '../spool/stored-records.js';
import { decodeEntries, encodeEntries } from '../wire/entry-batch.js';
import { IdentityRanges, identityRuns } from '../wire/entry-identity.js';
import type { IdentityRun } from '../wire/entry-identity.js';

/** Default bound of the table: (collector, file) pairs remembered. */
export const DEFAULT_ACCEPTED_MAX_FILES = 100_000;

/** What part of a chunk the aggregator already accepted. */
export type ChunkNovelty =
  | { readonly kind: 'new' }
  | { readonly kind: 'replay'; readonly entries: number }
  /** Some entries are replays: `data` holds the others (re-encoded), `dropped` counts the replays. */
  | { readonly kind: 'partly'; readonly data: Buffer; readonly entries: number; readonly dropped: number };

/** The identity runs of a chunk (undefined when they cannot be read: then nothing is deduplicated). */
export interface ChunkIdentity {
  readonly collectorId: string;
  readonly runs: readonly IdentityRun[];
}

/**
 * Per collector and file, the entry offsets the aggregator has durably accepted (in the spool or the
 * dead-letter file), as ranges (src/wire/entry-identity.ts). A resent chunk's entries inside them are
 * acknowledged without being appended again. Rebuilt from the spool's records at start-up; bounded,
 * the least recently used file forgotten first (counted by `onEvict`).
 */
export class AcceptedOffsets {
  private readonly ranges: IdentityRanges;

  constructor(maxFiles = DEFAULT_ACCEPTED_MAX_FILES, onEvict?: () => void) {
    this.ranges = new IdentityRanges(maxFiles, onEvict);
  }

  get files(): number {
    return this.ranges.size;
  }

  /**
   * Reads every record in the spool directory `dir` (undelivered and retained segments; delivered
   * segments already deleted are gone, and the file emitter's own commit covers what it wrote of them).
   */
  static async rebuild(dir: string, maxFiles = DEFAULT_ACCEPTED_MAX_FILES, onEvict?: () => void): Promise<AcceptedOffsets> {
    const table = new AcceptedOffsets(maxFiles, onEvict);
    for await (const record of readStoredRecords(dir, await listStoredSegments(dir))) {
      const id = identityOf(record.data);
      if (id !== undefined) table.add(id);
    }
    return table;
  }

  /** Which of the chunk's entries are new. Decodes the chunk only when some of them are not. */
  novelty(id: ChunkIdentity, data: Buffer, entryCount: number): ChunkNovelty {
    let overlap = false;
    let all = true;
    for (const r of id.runs) {
      const f = this.ranges.get(id.collectorId, r.fileId);
      if (f === undefined || !f.overlaps(r.lo, r.hi)) {
        all = false;
        continue;
      }
      overlap = true;
      if (!(f.has(r.lo) && f.has(r.hi) && coveredWhole(f.ranges, r.lo, r.hi))) all = false;
    }
    if (!overlap) return { kind: 'new' };
    if (all) return { kind: 'replay', entries: entryCount };
    const entries = decodeEntries(data);
    const kept = entries.filter((e) => this.ranges.get(e.source.collectorId, e.source.fileId)?.has(e.offset) !== true);
    if (kept.length === entries.length) return { kind: 'new' };
    if (kept.length === 0) return { kind: 'replay', entries: entries.length };
    // One collector and one set of tags per chunk: one EntryBatch.
    const [batch] = encodeEntries(kept);
    return { kind: 'partly', data: batch as Buffer, entries: kept.length, dropped: entries.length - kept.length };
  }

  /** Records the chunk's entries as durably accepted. */
  add(id: ChunkIdentity): void {
    for (const r of id.runs) this.ranges.add(id.collectorId, r.fileId, r.lo, r.hi, r.next);
  }
}

/** Whether [lo, hi] lies inside one range. */
function coveredWhole(ranges: ReadonlyArray<{ lo: number; hi: number }>, lo: number, hi: number): boolean {
  return ranges.some((r) => r.lo <= lo && hi <= r.hi);
}

/** The chunk's identity runs; undefined for bytes that do not decode (never deduplicated). */
export function identityOf(data: Buffer): ChunkIdentity | undefined {
  try {
    return identityRuns(data);
  } catch {
    return undefined;
  }
}

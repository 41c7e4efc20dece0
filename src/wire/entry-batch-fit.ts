import { EntryBatchWriter, LineFlag, RunHead, decodeEntries, encodeBatchHeader, encodeEntries } from './entry-batch.js';
import type { Entry } from './entry-batch.js';

/**
 * Reshaping an EntryBatch to size limits, on the rare paths where a batch was built under other
 * limits than the ones that now apply: the collector re-cuts a sealed chunk for an aggregator that
 * advertises smaller limits, and the aggregator sets aside the lines it cannot accept. Both decode the
 * batch (one object per entry, bounded by the entry limit) and encode it again.
 *
 * A line cut into pieces keeps the convention of the collector's line cutter: every piece but the
 * last carries LINE_FLAGS_PARTIAL, the last LINE_FLAGS_PARTIAL_LAST, and each piece's offset is the
 * offset of its first byte in the file, so a consumer rejoins the pieces of one line by file_id and
 * contiguous offsets (offset + data length = next piece's offset) up to the PARTIAL_LAST piece.
 */
export interface FitLimits {
  readonly maxChunkBytes: number;
  readonly maxLineBytes: number;
  readonly maxEntriesPerChunk: number;
}

export interface FittedBatch {
  readonly payload: Buffer;
  readonly entryCount: number;
  readonly longestLine: number;
}

/** The flags of piece `i` of `n` of a line whose own flags are `flags`. */
export function pieceFlags(flags: number, i: number, n: number): number {
  if (n === 1) return flags;
  const keep = flags & LineFlag.Multiline;
  if (i < n - 1) return LineFlag.Partial | keep;
  // The last piece ends what the original entry ended: the whole line, or (when the entry was itself
  // a non-final piece of a longer line) only that piece.
  return (flags & LineFlag.Partial) !== 0 ? flags : flags | LineFlag.PartialLast;
}

/**
 * Re-encodes `batch` into batches within `limits`, in entry order: lines longer than maxLineBytes
 * become flagged pieces, and a batch is closed before it would pass maxChunkBytes or
 * maxEntriesPerChunk. Nothing is dropped: the pieces hold every byte of every line.
 */
export function fitEntryBatch(batch: Buffer, limits: FitLimits): FittedBatch[] {
  const entries = decodeEntries(batch);
  const first = entries[0];
  if (first === undefined) return [];
  const writer = new EntryBatchWriter(encodeBatchHeader(first.source.collectorId, first.tags));
  const heads = new Map<string, RunHead>();
  const out: FittedBatch[] = [];
  const maxLine = Math.max(1, limits.maxLineBytes);
  for (const e of entries) {
    const key = `${e.source.path}\u0000${e.source.fileId}`;
    let head = heads.get(key);
    if (head === undefined) {
      head = new RunHead(e.source.path, e.source.fileId);
      heads.set(key, head);
    }
    const n = Math.max(1, Math.ceil(e.line.length / maxLine));
    for (let i = 0; i < n; i++) {
      const start = i * maxLine;
      const end = Math.min(e.line.length, start + maxLine);
      const offset = e.offset + start;
      const full =
        writer.entryCount >= limits.maxEntriesPerChunk || writer.byteLengthWith(head, end - start, offset) > limits.maxChunkBytes;
      if (writer.entryCount > 0 && full) out.push(finishFitted(writer));
      writer.addLine(head, e.line, start, end, offset, e.timeUnixNano, pieceFlags(e.flags, i, n));
    }
  }
  if (writer.entryCount > 0) out.push(finishFitted(writer));
  return out;
}

function finishFitted(writer: EntryBatchWriter): FittedBatch {
  const entryCount = writer.entryCount;
  const longestLine = writer.longestLine;
  return { entryCount, longestLine, payload: writer.finish() };
}

export interface Partitioned {
  /** The entries within the line limit, as one EntryBatch (undefined when there are none). */
  readonly kept: Buffer | undefined;
  readonly keptCount: number;
  /** The entries over it, as one EntryBatch (undefined when there are none). */
  readonly oversized: Buffer | undefined;
  readonly oversizedCount: number;
}

/** Splits `batch` into the entries whose line fits `maxLineBytes` and those that do not. */
export function partitionOversized(batch: Buffer, maxLineBytes: number): Partitioned {
  const kept: Entry[] = [];
  const oversized: Entry[] = [];
  for (const e of decodeEntries(batch)) (e.line.length > maxLineBytes ? oversized : kept).push(e);
  // decodeEntries shares one collector id and tag list among all entries: each side encodes as one batch.
  return {
    kept: kept.length > 0 ? encodeEntries(kept)[0] : undefined,
    keptCount: kept.length,
    oversized: oversized.length > 0 ? encodeEntries(oversized)[0] : undefined,
    oversizedCount: oversized.length,
  };
}

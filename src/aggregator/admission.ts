import { scanEntryBatch } from '../wire/entry-batch.js';
import type { ChunkMessage } from '../wire/grpc-api.js';

export interface AdmissionLimits {
  /** Largest Chunk.entries accepted (AGGREGATOR_MAX_CHUNK_BYTES). */
  readonly maxChunkBytes: number;
  /** Largest single line accepted (AGGREGATOR_MAX_LINE_BYTES). */
  readonly maxLineBytes: number;
}

export type Admission =
  | { readonly ok: true; readonly entryCount: number; readonly lineBytes: number }
  | { readonly ok: false; readonly reason: string };

/**
 * Validates one chunk before it may touch the spool: size, a full wire scan of the EntryBatch (field
 * types, lengths, UTF-8 of strings, line sizes) and the announced entry count. Cheap: no object per
 * line. Anything malformed is refused here, so the spool only ever holds batches the emitters can
 * decode.
 */
export function admitChunk(chunk: ChunkMessage, limits: AdmissionLimits): Admission {
  const entries = chunk.entries;
  if (!Buffer.isBuffer(entries)) return { ok: false, reason: 'chunk has no entries field' };
  if (entries.length > limits.maxChunkBytes) {
    return { ok: false, reason: `chunk of ${entries.length} bytes exceeds the limit of ${limits.maxChunkBytes}` };
  }
  let scanned: { entryCount: number; lineBytes: number };
  try {
    scanned = scanEntryBatch(entries, { maxLineBytes: limits.maxLineBytes });
  } catch (err) {
    return { ok: false, reason: `malformed entries: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (scanned.entryCount !== chunk.entryCount) {
    return { ok: false, reason: `entry_count is ${chunk.entryCount} but the chunk holds ${scanned.entryCount} entries` };
  }
  return { ok: true, entryCount: scanned.entryCount, lineBytes: scanned.lineBytes };
}

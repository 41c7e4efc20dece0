import { ScanError, scanEntryBatch } from '../wire/entry-batch.js';
import { IdentityCollector } from '../wire/entry-identity.js';
import type { IdentityRun } from '../wire/entry-identity.js';
import type { ChunkMessage } from '../wire/grpc-api.js';
import type { IngestLimits } from '../wire/ingest-limits.js';

/** The aggregator's chunk limits (AGGREGATOR_MAX_*), the same ones it advertises to collectors. */
export type AdmissionLimits = IngestLimits;

export type Admission =
  | {
      readonly ok: true;
      readonly entryCount: number;
      readonly lineBytes: number;
      /** Lines over maxLineBytes: set aside as dead letters, the rest of the chunk is accepted. */
      readonly oversizedLines: number;
      /** Where each line's bytes lie in the entries (lineSpans), found by the scan: the spool's reader needs no second walk. */
      readonly spans: Uint32Array;
      /** With `identity`: the entry identities (identityRuns), found by the same scan. */
      readonly identity?: { readonly collectorId: string; readonly runs: readonly IdentityRun[] };
    }
  | {
      readonly ok: false;
      readonly reason: string;
      /** Entries the scan met before it refused the chunk: what metrics count (never the client's claim). */
      readonly entriesSeen: number;
    };

/**
 * Validates one chunk before it may touch the spool: size, a full wire scan of the EntryBatch (field
 * types, lengths, UTF-8 of strings, entry and tag bounds, line sizes) and the announced entry count.
 * Cheap: no object per line, and a scan stops at the first entry past the limit. Anything malformed
 * is refused here, so the spool only ever holds batches the emitters can decode. With `identity`
 * (deduplication on), the same walk finds the chunk's entry identities.
 */
export function admitChunk(chunk: ChunkMessage, limits: AdmissionLimits, identity = false): Admission {
  const entries = chunk.entries;
  if (!Buffer.isBuffer(entries)) return { ok: false, reason: 'chunk has no entries field', entriesSeen: 0 };
  if (entries.length > limits.maxChunkBytes) {
    return { ok: false, reason: `chunk of ${entries.length} bytes exceeds the limit of ${limits.maxChunkBytes}`, entriesSeen: 0 };
  }
  let scanned;
  const observer = identity ? new IdentityCollector() : undefined;
  try {
    scanned = scanEntryBatch(entries, {
      maxLineBytes: limits.maxLineBytes,
      maxEntries: limits.maxEntriesPerChunk,
      maxTags: limits.maxTags,
      maxTagBytes: limits.maxTagBytes,
      spans: true,
    }, observer);
  } catch (err) {
    const seen = err instanceof ScanError ? err.entriesSeen : 0;
    return { ok: false, reason: `malformed entries: ${err instanceof Error ? err.message : String(err)}`, entriesSeen: seen };
  }
  if (scanned.entryCount !== chunk.entryCount) {
    return {
      ok: false,
      reason: `entry_count is ${chunk.entryCount} but the chunk holds ${scanned.entryCount} entries`,
      entriesSeen: scanned.entryCount,
    };
  }
  const admitted = { ok: true as const, entryCount: scanned.entryCount, lineBytes: scanned.lineBytes, oversizedLines: scanned.oversizedLines, spans: scanned.spans ?? new Uint32Array(0) };
  return observer === undefined ? admitted : { ...admitted, identity: observer.result() };
}

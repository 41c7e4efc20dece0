import type * as grpc from '@grpc/grpc-js';

/**
 * The size limits an aggregator enforces on chunks, advertised to the collector in the response
 * headers (initial metadata) of every `Ingest.Ship` stream, before the first ack. A collector never
 * builds a chunk or a line beyond them. An aggregator that sends none (older versions) gets chunks
 * within CONSERVATIVE_LIMITS. Keys are documented in api/api.proto.
 */
export interface IngestLimits {
  /** Largest Chunk.entries (AGGREGATOR_MAX_CHUNK_BYTES). */
  readonly maxChunkBytes: number;
  /** Largest Line.data (AGGREGATOR_MAX_LINE_BYTES). */
  readonly maxLineBytes: number;
  /** Most Line messages in one chunk (AGGREGATOR_MAX_ENTRIES_PER_CHUNK). */
  readonly maxEntriesPerChunk: number;
  /** Most tags in one EntryBatch (AGGREGATOR_MAX_TAGS). */
  readonly maxTags: number;
  /** Most key+value bytes of all tags of one EntryBatch (AGGREGATOR_MAX_TAG_BYTES). */
  readonly maxTagBytes: number;
  /**
   * The aggregator reads LineBlocks (FileRun.blocks): advertised as `mc-line-blocks: 1` by every
   * aggregator with this code (not a setting), absent from older ones, which would skip them.
   */
  readonly lineBlocks?: boolean;
}

/**
 * What a collector assumes of an aggregator that advertises nothing: within what every released
 * aggregator accepts with its defaults (16 MiB chunks, 4 MiB lines), and within gRPC's common 4 MiB
 * message default.
 */
export const CONSERVATIVE_LIMITS: IngestLimits = Object.freeze({
  maxChunkBytes: 4 * 1024 * 1024,
  maxLineBytes: 1024 * 1024,
  maxEntriesPerChunk: 65_536,
  maxTags: 64,
  maxTagBytes: 4096,
});

const LINE_BLOCKS_KEY = 'mc-line-blocks';

const KEYS: ReadonlyArray<readonly [Exclude<keyof IngestLimits, 'lineBlocks'>, string]> = [
  ['maxChunkBytes', 'mc-max-chunk-bytes'],
  ['maxLineBytes', 'mc-max-line-bytes'],
  ['maxEntriesPerChunk', 'mc-max-entries-per-chunk'],
  ['maxTags', 'mc-max-tags'],
  ['maxTagBytes', 'mc-max-tag-bytes'],
];

/**
 * Writes the limits into response metadata (decimal strings), and that this aggregator reads
 * LineBlocks (unless `lineBlocks` is false: how tests play an older aggregator).
 */
export function writeLimits(md: grpc.Metadata, limits: IngestLimits): grpc.Metadata {
  for (const [field, key] of KEYS) md.set(key, String(limits[field]));
  if (limits.lineBlocks !== false) md.set(LINE_BLOCKS_KEY, '1');
  return md;
}

/**
 * Reads advertised limits; undefined when the aggregator advertised none (an older version). A key
 * missing or unreadable falls back to its conservative value, so a partial advertisement is safe.
 */
export function readLimits(md: grpc.Metadata): IngestLimits | undefined {
  let any = false;
  const out: Record<string, number> = {};
  for (const [field, key] of KEYS) {
    out[field] = CONSERVATIVE_LIMITS[field];
    const raw = md.get(key)[0];
    if (typeof raw !== 'string') continue;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 1) continue;
    out[field] = n;
    any = true;
  }
  if (!any) return undefined;
  return Object.freeze({ ...(out as unknown as IngestLimits), lineBlocks: md.get(LINE_BLOCKS_KEY)[0] === '1' });
}

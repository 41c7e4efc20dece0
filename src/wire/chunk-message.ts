import { encodeChunk } from './ingest-codec.js';
import type { ChunkMessage } from './ingest-codec.js';
import { varintFieldSize, writeVarintField } from './proto-fields.js';
import { varintSize, writeVarint } from './varint.js';

/**
 * The collector's serializer of `Chunk { uint64 sequence = 1; bytes entries = 2; uint32 entry_count = 3 }`
 * (api/api.proto): the bytes `encodeChunk` (ingest-codec.ts) writes, without copying `entries`. When
 * the EntryBatch was built with CHUNK_HEADROOM bytes free before it and CHUNK_TAILROOM after it in its
 * buffer (`backing`), the other fields are written around it in place and the message is a view: no
 * copy at all (grpc-js's framing then makes the one copy that goes to the socket). Otherwise (a re-cut
 * part) `encodeChunk` copies once.
 */

/** The gRPC message prefix (compressed flag, 4-byte length) that the transport puts before a message. */
export const GRPC_FRAME_PREFIX = 5;
/**
 * Room before the entries: the gRPC prefix (so the framed message can be a view too: see
 * src/collector/grpc-frame-in-place.ts), sequence (tag + varint of a safe integer, at most 8 bytes),
 * entries tag + length.
 */
export const CHUNK_HEADROOM = GRPC_FRAME_PREFIX + 1 + 8 + 1 + 5;
/** Room after the entries: entry_count (tag + varint of a uint32). */
export const CHUNK_TAILROOM = 1 + 5;

const TAG_ENTRIES = 0x12;

/** A Chunk to send; `backing`: the buffer `entries` is a view of, when it has room around it. */
export interface OutgoingChunk extends ChunkMessage {
  readonly backing?: Buffer | undefined;
}

/**
 * The serialized Chunk: in place around `entries` when `backing` has the room (then with at least
 * GRPC_FRAME_PREFIX bytes of `backing` free before it), else one new buffer.
 */
export function encodeChunkMessage(msg: OutgoingChunk): Buffer {
  const { sequence, entries, entryCount, backing } = msg;
  if (backing === undefined || entries.length === 0 || backing.buffer !== entries.buffer || !Number.isSafeInteger(sequence) || sequence < 0 || !(entryCount >= 0 && entryCount <= 0xffffffff)) {
    return encodeChunk(msg);
  }
  const headLen = varintFieldSize(1, sequence) + 1 + varintSize(entries.length);
  const tailLen = varintFieldSize(3, entryCount);
  const start = entries.byteOffset - backing.byteOffset;
  const end = start + entries.length;
  if (start < headLen + GRPC_FRAME_PREFIX || backing.length - end < tailLen) return encodeChunk(msg);
  const out = backing.subarray(start - headLen, end + tailLen);
  let pos = writeVarintField(out, 0, 1, sequence);
  out[pos++] = TAG_ENTRIES;
  pos = writeVarint(out, pos, entries.length) + entries.length;
  writeVarintField(out, pos, 3, entryCount);
  return out;
}

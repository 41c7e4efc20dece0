import { varintSize, writeVarint } from './varint.js';
import type { ChunkMessage } from './grpc-api.js';

/**
 * The collector's serializer of `Chunk { uint64 sequence = 1; bytes entries = 2; uint32 entry_count = 3 }`
 * (api/api.proto), byte for byte what protobufjs writes for the same object (every field written,
 * minimal varints), without protobufjs copying `entries` into a message of its own. When the
 * EntryBatch was built with CHUNK_HEADROOM bytes free before it and CHUNK_TAILROOM after it in its
 * buffer (`backing`), the fields are written around it in place and the message is a view: no copy
 * at all (grpc-js's framing then makes the one copy that goes to the socket).
 */

/** Room before the entries: sequence (tag + varint of a safe integer, at most 8 bytes), entries tag + length. */
export const CHUNK_HEADROOM = 1 + 8 + 1 + 5;
/** Room after the entries: entry_count (tag + varint of a uint32). */
export const CHUNK_TAILROOM = 1 + 5;

const TAG_SEQUENCE = 0x08;
const TAG_ENTRIES = 0x12;
const TAG_ENTRY_COUNT = 0x18;

/** A Chunk to send; `backing`: the buffer `entries` is a view of, when it has room around it. */
export interface OutgoingChunk extends ChunkMessage {
  readonly backing?: Buffer | undefined;
}

/** The serialized Chunk: in place around `entries` when `backing` has the room, else one new buffer. */
export function encodeChunkMessage(msg: OutgoingChunk): Buffer {
  const { sequence, entries, entryCount } = msg;
  const headLen = 1 + varintSize(sequence) + 1 + varintSize(entries.length);
  const tailLen = 1 + varintSize(entryCount >>> 0);
  const backing = msg.backing;
  let out: Buffer;
  if (backing !== undefined && backing.buffer === entries.buffer && entries.byteOffset - backing.byteOffset >= headLen && backing.byteOffset + backing.length - (entries.byteOffset + entries.length) >= tailLen) {
    const start = entries.byteOffset - backing.byteOffset;
    out = backing.subarray(start - headLen, start + entries.length + tailLen);
  } else {
    out = Buffer.allocUnsafe(headLen + entries.length + tailLen);
    entries.copy(out, headLen);
  }
  out[0] = TAG_SEQUENCE;
  let pos = writeVarint(out, 1, sequence);
  out[pos++] = TAG_ENTRIES;
  pos = writeVarint(out, pos, entries.length) + entries.length;
  out[pos++] = TAG_ENTRY_COUNT;
  writeVarint(out, pos, entryCount >>> 0);
  return out;
}

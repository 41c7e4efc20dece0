import { bytesFieldSize, varintFieldSize, writeBytesField, writeVarintField } from './proto-fields.js';
import { WIRE_LEN, WIRE_VARINT, WireError, WireReader } from './varint.js';

/**
 * `Chunk` and `Ack` of api/api.proto, encoded and decoded by hand. Both are a handful of scalar fields;
 * loading them with @grpc/proto-loader parsed the .proto with protobufjs at every start, which with
 * loading protobufjs itself cost ~120 ms of CPU and ~5 MiB per program (bench/README.md, start-up).
 * The shapes are the ones proto-loader handed over with `longs: Number, enums: String, defaults: true`:
 * missing fields read as their defaults, an Ack code this build does not know reads as its number.
 * Encoding is canonical proto3 (fields at their default value are left out); decoding skips unknown
 * fields (a newer peer's additions) and throws WireError on bytes that are not such a message.
 * test/unit/ingest-codec.test.ts checks both directions against protobufjs reading api/api.proto.
 */

/** A Chunk as the Ingest service hands it over (`entries` is a view into the received message). */
export interface ChunkMessage {
  sequence: number;
  entries: Buffer;
  entryCount: number;
}

export const AckCode = {
  OK: 'OK',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  RESOURCE_EXHAUSTED: 'RESOURCE_EXHAUSTED',
  UNAVAILABLE: 'UNAVAILABLE',
} as const;
export type AckCode = (typeof AckCode)[keyof typeof AckCode];

export interface AckMessage {
  sequence: number;
  code: AckCode;
  message: string;
  retryAfterMs: number;
}

/** `Ack.Code` numbers, in the order of api/api.proto. */
const ACK_CODES: readonly AckCode[] = [AckCode.OK, AckCode.INVALID_ARGUMENT, AckCode.RESOURCE_EXHAUSTED, AckCode.UNAVAILABLE];
const ACK_CODE_NUMBERS: ReadonlyMap<string, number> = new Map(ACK_CODES.map((code, i) => [code, i]));

const EMPTY = Buffer.alloc(0);

function checkUint(name: string, n: number, max: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new WireError(`${name} ${String(n)} is not an integer in 0..${max}`);
}

export function encodeChunk(chunk: ChunkMessage): Buffer {
  const sequence = chunk.sequence;
  const entries = chunk.entries ?? EMPTY;
  const entryCount = chunk.entryCount;
  checkUint('Chunk.sequence', sequence, Number.MAX_SAFE_INTEGER);
  checkUint('Chunk.entry_count', entryCount, 0xffffffff);
  const out = Buffer.allocUnsafe(varintFieldSize(1, sequence) + bytesFieldSize(2, entries.length) + varintFieldSize(3, entryCount));
  let pos = writeVarintField(out, 0, 1, sequence);
  pos = writeBytesField(out, pos, 2, entries);
  writeVarintField(out, pos, 3, entryCount);
  return out;
}

export function decodeChunk(buf: Buffer): ChunkMessage {
  const chunk: ChunkMessage = { sequence: 0, entries: EMPTY, entryCount: 0 };
  const r = new WireReader(buf);
  while (!r.done) {
    const key = r.varint();
    const field = key >>> 3;
    const wireType = key & 7;
    if (field === 1 && wireType === WIRE_VARINT) chunk.sequence = r.varint();
    else if (field === 2 && wireType === WIRE_LEN) {
      const start = r.lengthDelimited();
      chunk.entries = buf.subarray(start, r.pos);
    } else if (field === 3 && wireType === WIRE_VARINT) chunk.entryCount = uint32(r.varint());
    else skipUnknown(r, field, wireType, 3);
  }
  return chunk;
}

export function encodeAck(ack: AckMessage): Buffer {
  const code = ACK_CODE_NUMBERS.get(ack.code) ?? (typeof ack.code === 'number' ? (ack.code as number) : undefined);
  if (code === undefined) throw new WireError(`Ack.code ${String(ack.code)} is not a known code`);
  checkUint('Ack.sequence', ack.sequence, Number.MAX_SAFE_INTEGER);
  const retryAfterMs = ack.retryAfterMs ?? 0;
  checkUint('Ack.retry_after_ms', retryAfterMs, 0xffffffff);
  const message = ack.message === undefined || ack.message === '' ? EMPTY : Buffer.from(ack.message, 'utf8');
  const out = Buffer.allocUnsafe(
    varintFieldSize(1, ack.sequence) + varintFieldSize(2, code) + bytesFieldSize(3, message.length) + varintFieldSize(4, retryAfterMs),
  );
  let pos = writeVarintField(out, 0, 1, ack.sequence);
  pos = writeVarintField(out, pos, 2, code);
  pos = writeBytesField(out, pos, 3, message);
  writeVarintField(out, pos, 4, retryAfterMs);
  return out;
}

export function decodeAck(buf: Buffer): AckMessage {
  const ack: AckMessage = { sequence: 0, code: AckCode.OK, message: '', retryAfterMs: 0 };
  const r = new WireReader(buf);
  while (!r.done) {
    const key = r.varint();
    const field = key >>> 3;
    const wireType = key & 7;
    if (field === 1 && wireType === WIRE_VARINT) ack.sequence = r.varint();
    else if (field === 2 && wireType === WIRE_VARINT) {
      const n = r.varint();
      // Like proto-loader with `enums: String`: a code this build does not know stays a number.
      ack.code = ACK_CODES[n] ?? (n as unknown as AckCode);
    } else if (field === 3 && wireType === WIRE_LEN) {
      const start = r.lengthDelimited();
      ack.message = buf.toString('utf8', start, r.pos);
    } else if (field === 4 && wireType === WIRE_VARINT) ack.retryAfterMs = uint32(r.varint());
    else skipUnknown(r, field, wireType, 4);
  }
  return ack;
}

/** uint32 fields keep the low 32 bits of a longer varint, as protobuf readers do. */
function uint32(n: number): number {
  return n <= 0xffffffff ? n : n % 2 ** 32;
}

/** Skips a field this build does not know; a known field with the wrong wire type is not our message. */
function skipUnknown(r: WireReader, field: number, wireType: number, knownFields: number): void {
  if (field === 0) throw new WireError('field number 0');
  if (field <= knownFields) throw new WireError(`field ${field} with the wrong wire type ${wireType}`);
  r.skip(wireType);
}

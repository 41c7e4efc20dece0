import { WIRE_LEN, WIRE_VARINT, varintSize, writeVarint } from './varint.js';

/**
 * Writing small proto3 messages by hand (ingest-codec.ts, the health service): a field at its default
 * value (0, empty) takes no bytes and is not written, as canonical proto3 encoders do.
 */

export function varintFieldSize(field: number, n: number): number {
  return n === 0 ? 0 : varintSize(field << 3) + varintSize(n);
}

export function bytesFieldSize(field: number, length: number): number {
  return length === 0 ? 0 : varintSize(field << 3) + varintSize(length) + length;
}

/** Writes `field = n` at `pos` unless n is 0; returns the position after it. */
export function writeVarintField(out: Buffer, pos: number, field: number, n: number): number {
  if (n === 0) return pos;
  pos = writeVarint(out, pos, (field << 3) | WIRE_VARINT);
  return writeVarint(out, pos, n);
}

/** Writes `field = bytes` (length-delimited) at `pos` unless empty; returns the position after it. */
export function writeBytesField(out: Buffer, pos: number, field: number, bytes: Uint8Array): number {
  if (bytes.length === 0) return pos;
  pos = writeVarint(out, pos, (field << 3) | WIRE_LEN);
  pos = writeVarint(out, pos, bytes.length);
  out.set(bytes, pos);
  return pos + bytes.length;
}

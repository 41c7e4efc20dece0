/**
 * The few protobuf wire primitives the hot path needs, written by hand: the entry encoding is read
 * and written per line, and a generic protobuf runtime would build one object per line (see
 * DESIGN.md, performance budget); the few small gRPC messages are written with them too (ingest-codec.ts,
 * the health service), so no .proto is parsed at start.
 */
export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  if (n < 0x800000000) return 5;
  if (n < 0x40000000000) return 6;
  if (n < 0x2000000000000) return 7;
  return 8; // up to 2^56, beyond any safe integer we write
}

/** Writes a non-negative safe integer as a varint at `pos`; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** A cursor over protobuf bytes; every read checks bounds and throws WireError. */
export class WireReader {
  pos: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
    public end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    // Fast path: up to 4 bytes fit in 28 bits.
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 4; i++) {
      if (pos >= this.end) throw new WireError('truncated varint');
      const b = buf[pos++] as number;
      result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return result >>> 0;
      }
      shift += 7;
    }
    let value = result >>> 0;
    let mul = 2 ** 28;
    for (let i = 4; i < 10; i++) {
      if (pos >= this.end) throw new WireError('truncated varint');
      const b = buf[pos++] as number;
      value += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) throw new WireError('varint exceeds 2^53');
        this.pos = pos;
        return value;
      }
      mul *= 128;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  /** Reads a length prefix and returns [start, end) of the delimited bytes. */
  lengthDelimited(): number {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new WireError(`length ${len} runs past the end of its message`);
    this.pos = start + len;
    return start;
  }

  fixed64Big(): bigint {
    if (this.pos + 8 > this.end) throw new WireError('truncated fixed64');
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.skipFixed(8);
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_FIXED32:
        this.skipFixed(4);
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }

  private skipFixed(bytes: 4 | 8): void {
    if (this.pos + bytes > this.end) throw new WireError(`truncated fixed${bytes * 8}`);
    this.pos += bytes;
  }
}

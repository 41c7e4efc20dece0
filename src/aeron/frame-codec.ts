/**
 * Aeron UDP frame codec (protocol version 0, little-endian). Layouts follow
 * aeron-client/src/main/c/protocol/aeron_udp_protocol.h; offsets are documented in
 * docs/aeron-protocol.md §1. Decoding returns plain objects and throws only AeronFrameError.
 */

export const FrameType = {
  Pad: 0x00,
  Data: 0x01,
  Nak: 0x02,
  Sm: 0x03,
  Err: 0x04,
  Setup: 0x05,
  Rttm: 0x06,
} as const;

export const PROTOCOL_VERSION = 0;
export const FRAME_ALIGNMENT = 32;
export const DATA_HEADER_LENGTH = 32;
export const SETUP_LENGTH = 40;
export const SM_LENGTH = 36;
export const SM_WITH_GROUP_TAG_LENGTH = 44;
export const NAK_LENGTH = 28;
export const RTTM_LENGTH = 40;
export const ERR_HEADER_LENGTH = 40;
export const ERR_MAX_TEXT_LENGTH = 1023;

export const DataFlag = { Begin: 0x80, End: 0x40, Eos: 0x20, Unfragmented: 0xc0 } as const;
export const SmFlag = { SendSetup: 0x80, Eos: 0x40 } as const;
export const RttmFlag = { Reply: 0x80 } as const;
export const ErrFlag = { HasGroupTag: 0x08 } as const;

/** A datagram or frame that is not a valid Aeron frame. `code` is stable for logs and tests. */
export class AeronFrameError extends Error {
  readonly code = 'AERON_MALFORMED_FRAME';

  constructor(message: string) {
    super(message);
    this.name = 'AeronFrameError';
  }
}

export interface DataHeader {
  readonly type: typeof FrameType.Data | typeof FrameType.Pad;
  readonly frameLength: number;
  readonly flags: number;
  readonly termOffset: number;
  readonly sessionId: number;
  readonly streamId: number;
  readonly termId: number;
  readonly reservedValue: bigint;
}

export interface SetupFrame {
  readonly type: typeof FrameType.Setup;
  readonly flags: number;
  readonly termOffset: number;
  readonly sessionId: number;
  readonly streamId: number;
  readonly initialTermId: number;
  readonly activeTermId: number;
  readonly termLength: number;
  readonly mtu: number;
  readonly ttl: number;
}

export interface StatusMessage {
  readonly type: typeof FrameType.Sm;
  readonly flags: number;
  readonly sessionId: number;
  readonly streamId: number;
  readonly consumptionTermId: number;
  readonly consumptionTermOffset: number;
  readonly receiverWindow: number;
  readonly receiverId: bigint;
  /** Present only when the frame is 44 bytes long. */
  readonly groupTag?: bigint;
}

export interface NakFrame {
  readonly type: typeof FrameType.Nak;
  readonly flags: number;
  readonly sessionId: number;
  readonly streamId: number;
  readonly termId: number;
  readonly termOffset: number;
  readonly length: number;
}

export interface RttmFrame {
  readonly type: typeof FrameType.Rttm;
  readonly flags: number;
  readonly sessionId: number;
  readonly streamId: number;
  readonly echoTimestampNs: bigint;
  readonly receptionDeltaNs: bigint;
  readonly receiverId: bigint;
}

export interface ErrFrame {
  readonly type: typeof FrameType.Err;
  readonly flags: number;
  readonly sessionId: number;
  readonly streamId: number;
  readonly receiverId: bigint;
  readonly groupTag: bigint;
  readonly errorCode: number;
  readonly message: string;
}

/** A DATA/PAD frame with its payload (a view into the datagram). Heartbeats have frameLength 0. */
export interface DataFrame extends DataHeader {
  readonly payload: Buffer;
}

export type ControlFrame = SetupFrame | StatusMessage | NakFrame | RttmFrame | ErrFrame;
export type Frame = DataFrame | ControlFrame;

export const align32 = (n: number): number => (n + 31) & ~31;

function need(buf: Buffer, offset: number, length: number, what: string): void {
  if (offset < 0 || buf.length - offset < length) {
    throw new AeronFrameError(`${what} needs ${length} bytes at offset ${offset}, datagram has ${buf.length}`);
  }
}

/** Type field of the frame at `offset` after checking length and version (what every receiver checks first). */
export function frameTypeAt(buf: Buffer, offset = 0): number {
  need(buf, offset, 8, 'frame header');
  const version = buf.readInt8(offset + 4);
  if (version !== PROTOCOL_VERSION) throw new AeronFrameError(`unsupported protocol version ${version}`);
  return buf.readInt16LE(offset + 6);
}

export function decodeDataHeader(buf: Buffer, offset = 0): DataHeader {
  need(buf, offset, DATA_HEADER_LENGTH, 'DATA header');
  const type = frameTypeAt(buf, offset);
  if (type !== FrameType.Data && type !== FrameType.Pad) throw new AeronFrameError(`type ${type} is not DATA or PAD`);
  const frameLength = buf.readInt32LE(offset);
  if (frameLength < 0 || (frameLength > 0 && frameLength < DATA_HEADER_LENGTH)) {
    throw new AeronFrameError(`DATA frame_length ${frameLength} is invalid`);
  }
  return {
    type,
    frameLength,
    flags: buf[offset + 5] as number,
    termOffset: buf.readInt32LE(offset + 8),
    sessionId: buf.readInt32LE(offset + 12),
    streamId: buf.readInt32LE(offset + 16),
    termId: buf.readInt32LE(offset + 20),
    reservedValue: buf.readBigInt64LE(offset + 24),
  };
}

export function encodeDataHeader(h: Omit<DataHeader, 'reservedValue'> & { reservedValue?: bigint }, out: Buffer, offset = 0): void {
  out.writeInt32LE(h.frameLength, offset);
  out[offset + 4] = PROTOCOL_VERSION;
  out[offset + 5] = h.flags;
  out.writeInt16LE(h.type, offset + 6);
  out.writeInt32LE(h.termOffset, offset + 8);
  out.writeInt32LE(h.sessionId, offset + 12);
  out.writeInt32LE(h.streamId, offset + 16);
  out.writeInt32LE(h.termId, offset + 20);
  out.writeBigInt64LE(h.reservedValue ?? 0n, offset + 24);
}

/**
 * Splits a DATA/PAD datagram into its frames. A heartbeat (32 bytes, frame_length 0) yields one frame
 * with an empty payload; a PAD frame contributes only its header and ends the datagram (§1.4).
 */
export function decodeDataDatagram(buf: Buffer): DataFrame[] {
  const frames: DataFrame[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const h = decodeDataHeader(buf, offset);
    if (h.frameLength === 0) {
      frames.push({ ...h, payload: buf.subarray(offset + DATA_HEADER_LENGTH, offset + DATA_HEADER_LENGTH) });
      offset += DATA_HEADER_LENGTH;
      break;
    }
    if (h.type === FrameType.Pad) {
      frames.push({ ...h, payload: buf.subarray(offset + DATA_HEADER_LENGTH, offset + DATA_HEADER_LENGTH) });
      offset += DATA_HEADER_LENGTH;
      break;
    }
    need(buf, offset, h.frameLength, 'DATA frame');
    frames.push({ ...h, payload: buf.subarray(offset + DATA_HEADER_LENGTH, offset + h.frameLength) });
    offset += Math.min(align32(h.frameLength), buf.length - offset);
  }
  if (offset !== buf.length) throw new AeronFrameError(`${buf.length - offset} trailing bytes after the last DATA frame`);
  return frames;
}

/** Lays DATA/PAD frames back to back at 32-byte alignment, zero padded, as the term holds them. */
export function encodeDataDatagram(frames: readonly DataFrame[]): Buffer {
  let total = 0;
  for (const f of frames) total += f.frameLength === 0 || f.type === FrameType.Pad ? DATA_HEADER_LENGTH : align32(f.frameLength);
  const out = Buffer.alloc(total);
  let offset = 0;
  for (const f of frames) {
    encodeDataHeader(f, out, offset);
    if (f.frameLength === 0 || f.type === FrameType.Pad) {
      offset += DATA_HEADER_LENGTH;
      continue;
    }
    f.payload.copy(out, offset + DATA_HEADER_LENGTH);
    offset += align32(f.frameLength);
  }
  return out;
}

export function encodeHeartbeat(
  h: { sessionId: number; streamId: number; termId: number; termOffset: number; eos: boolean },
  out: Buffer = Buffer.allocUnsafe(DATA_HEADER_LENGTH),
): Buffer {
  encodeDataHeader(
    { type: FrameType.Data, frameLength: 0, flags: h.eos ? DataFlag.Unfragmented | DataFlag.Eos : DataFlag.Unfragmented, termOffset: h.termOffset, sessionId: h.sessionId, streamId: h.streamId, termId: h.termId },
    out,
  );
  return out;
}

export function decodeSetup(buf: Buffer, offset = 0): SetupFrame {
  need(buf, offset, SETUP_LENGTH, 'SETUP');
  if (frameTypeAt(buf, offset) !== FrameType.Setup) throw new AeronFrameError('not a SETUP frame');
  return {
    type: FrameType.Setup,
    flags: buf[offset + 5] as number,
    termOffset: buf.readInt32LE(offset + 8),
    sessionId: buf.readInt32LE(offset + 12),
    streamId: buf.readInt32LE(offset + 16),
    initialTermId: buf.readInt32LE(offset + 20),
    activeTermId: buf.readInt32LE(offset + 24),
    termLength: buf.readInt32LE(offset + 28),
    mtu: buf.readInt32LE(offset + 32),
    ttl: buf.readInt32LE(offset + 36),
  };
}

function header(out: Buffer, length: number, flags: number, type: number): void {
  out.writeInt32LE(length, 0);
  out[4] = PROTOCOL_VERSION;
  out[5] = flags;
  out.writeInt16LE(type, 6);
}

export function encodeSetup(f: Omit<SetupFrame, 'type'>): Buffer {
  const out = Buffer.alloc(SETUP_LENGTH);
  header(out, SETUP_LENGTH, f.flags, FrameType.Setup);
  out.writeInt32LE(f.termOffset, 8);
  out.writeInt32LE(f.sessionId, 12);
  out.writeInt32LE(f.streamId, 16);
  out.writeInt32LE(f.initialTermId, 20);
  out.writeInt32LE(f.activeTermId, 24);
  out.writeInt32LE(f.termLength, 28);
  out.writeInt32LE(f.mtu, 32);
  out.writeInt32LE(f.ttl, 36);
  return out;
}

export function decodeStatusMessage(buf: Buffer, offset = 0): StatusMessage {
  need(buf, offset, SM_LENGTH, 'SM');
  if (frameTypeAt(buf, offset) !== FrameType.Sm) throw new AeronFrameError('not an SM frame');
  const frameLength = buf.readInt32LE(offset);
  if (frameLength !== SM_LENGTH && frameLength !== SM_WITH_GROUP_TAG_LENGTH) {
    throw new AeronFrameError(`SM frame_length ${frameLength} is neither 36 nor 44`);
  }
  need(buf, offset, frameLength, 'SM');
  const sm: StatusMessage = {
    type: FrameType.Sm,
    flags: buf[offset + 5] as number,
    sessionId: buf.readInt32LE(offset + 8),
    streamId: buf.readInt32LE(offset + 12),
    consumptionTermId: buf.readInt32LE(offset + 16),
    consumptionTermOffset: buf.readInt32LE(offset + 20),
    receiverWindow: buf.readInt32LE(offset + 24),
    receiverId: buf.readBigInt64LE(offset + 28),
  };
  return frameLength === SM_WITH_GROUP_TAG_LENGTH ? { ...sm, groupTag: buf.readBigInt64LE(offset + 36) } : sm;
}

export function encodeStatusMessage(f: Omit<StatusMessage, 'type'>): Buffer {
  const length = f.groupTag === undefined ? SM_LENGTH : SM_WITH_GROUP_TAG_LENGTH;
  const out = Buffer.alloc(length);
  header(out, length, f.flags, FrameType.Sm);
  out.writeInt32LE(f.sessionId, 8);
  out.writeInt32LE(f.streamId, 12);
  out.writeInt32LE(f.consumptionTermId, 16);
  out.writeInt32LE(f.consumptionTermOffset, 20);
  out.writeInt32LE(f.receiverWindow, 24);
  out.writeBigInt64LE(f.receiverId, 28);
  if (f.groupTag !== undefined) out.writeBigInt64LE(f.groupTag, 36);
  return out;
}

export function decodeNak(buf: Buffer, offset = 0): NakFrame {
  need(buf, offset, NAK_LENGTH, 'NAK');
  if (frameTypeAt(buf, offset) !== FrameType.Nak) throw new AeronFrameError('not a NAK frame');
  return {
    type: FrameType.Nak,
    flags: buf[offset + 5] as number,
    sessionId: buf.readInt32LE(offset + 8),
    streamId: buf.readInt32LE(offset + 12),
    termId: buf.readInt32LE(offset + 16),
    termOffset: buf.readInt32LE(offset + 20),
    length: buf.readInt32LE(offset + 24),
  };
}

export function encodeNak(f: Omit<NakFrame, 'type'>): Buffer {
  const out = Buffer.alloc(NAK_LENGTH);
  header(out, NAK_LENGTH, f.flags, FrameType.Nak);
  out.writeInt32LE(f.sessionId, 8);
  out.writeInt32LE(f.streamId, 12);
  out.writeInt32LE(f.termId, 16);
  out.writeInt32LE(f.termOffset, 20);
  out.writeInt32LE(f.length, 24);
  return out;
}

export function decodeRttm(buf: Buffer, offset = 0): RttmFrame {
  need(buf, offset, RTTM_LENGTH, 'RTTM');
  if (frameTypeAt(buf, offset) !== FrameType.Rttm) throw new AeronFrameError('not an RTTM frame');
  return {
    type: FrameType.Rttm,
    flags: buf[offset + 5] as number,
    sessionId: buf.readInt32LE(offset + 8),
    streamId: buf.readInt32LE(offset + 12),
    echoTimestampNs: buf.readBigInt64LE(offset + 16),
    receptionDeltaNs: buf.readBigInt64LE(offset + 24),
    receiverId: buf.readBigInt64LE(offset + 32),
  };
}

export function encodeRttm(f: Omit<RttmFrame, 'type'>): Buffer {
  const out = Buffer.alloc(RTTM_LENGTH);
  header(out, RTTM_LENGTH, f.flags, FrameType.Rttm);
  out.writeInt32LE(f.sessionId, 8);
  out.writeInt32LE(f.streamId, 12);
  out.writeBigInt64LE(f.echoTimestampNs, 16);
  out.writeBigInt64LE(f.receptionDeltaNs, 24);
  out.writeBigInt64LE(f.receiverId, 32);
  return out;
}

export function decodeErr(buf: Buffer, offset = 0): ErrFrame {
  need(buf, offset, ERR_HEADER_LENGTH, 'ERR');
  if (frameTypeAt(buf, offset) !== FrameType.Err) throw new AeronFrameError('not an ERR frame');
  const frameLength = buf.readInt32LE(offset);
  const textLength = buf.readInt32LE(offset + 36);
  if (textLength < 0 || textLength > ERR_MAX_TEXT_LENGTH) throw new AeronFrameError(`ERR text length ${textLength} is invalid`);
  if (frameLength < ERR_HEADER_LENGTH + textLength) throw new AeronFrameError(`ERR frame_length ${frameLength} is shorter than its text`);
  need(buf, offset, ERR_HEADER_LENGTH + textLength, 'ERR text');
  return {
    type: FrameType.Err,
    flags: buf[offset + 5] as number,
    sessionId: buf.readInt32LE(offset + 8),
    streamId: buf.readInt32LE(offset + 12),
    receiverId: buf.readBigInt64LE(offset + 16),
    groupTag: buf.readBigInt64LE(offset + 24),
    errorCode: buf.readInt32LE(offset + 32),
    message: buf.toString('latin1', offset + ERR_HEADER_LENGTH, offset + ERR_HEADER_LENGTH + textLength),
  };
}

export function encodeErr(f: Omit<ErrFrame, 'type'>): Buffer {
  const text = Buffer.from(f.message, 'latin1').subarray(0, ERR_MAX_TEXT_LENGTH);
  const out = Buffer.alloc(ERR_HEADER_LENGTH + text.length);
  header(out, out.length, f.flags, FrameType.Err);
  out.writeInt32LE(f.sessionId, 8);
  out.writeInt32LE(f.streamId, 12);
  out.writeBigInt64LE(f.receiverId, 16);
  out.writeBigInt64LE(f.groupTag, 24);
  out.writeInt32LE(f.errorCode, 32);
  out.writeInt32LE(text.length, 36);
  text.copy(out, ERR_HEADER_LENGTH);
  return out;
}

/** Decodes a whole datagram: DATA/PAD datagrams give several frames, control datagrams one. */
export function decodeDatagram(buf: Buffer): Frame[] {
  const type = frameTypeAt(buf, 0);
  switch (type) {
    case FrameType.Data:
    case FrameType.Pad:
      return decodeDataDatagram(buf);
    case FrameType.Setup:
      return [decodeSetup(buf)];
    case FrameType.Sm:
      return [decodeStatusMessage(buf)];
    case FrameType.Nak:
      return [decodeNak(buf)];
    case FrameType.Rttm:
      return [decodeRttm(buf)];
    case FrameType.Err:
      return [decodeErr(buf)];
    default:
      throw new AeronFrameError(`unknown frame type ${type}`);
  }
}

/** Inverse of decodeDatagram. */
export function encodeDatagram(frames: readonly Frame[]): Buffer {
  const first = frames[0];
  if (first === undefined) throw new AeronFrameError('no frames to encode');
  switch (first.type) {
    case FrameType.Data:
    case FrameType.Pad:
      return encodeDataDatagram(frames as DataFrame[]);
    case FrameType.Setup:
      return encodeSetup(first);
    case FrameType.Sm:
      return encodeStatusMessage(first);
    case FrameType.Nak:
      return encodeNak(first);
    case FrameType.Rttm:
      return encodeRttm(first);
    case FrameType.Err:
      return encodeErr(first);
  }
}

/**
 * Aeron UDP frame codec (protocol version 0, little-endian). Layouts follow
 * aeron-client/src/main/c/protocol/aeron_udp_protocol.h; offsets are documented in
 * docs/aeron-protocol.md §1. Decoding returns plain objects and throws only AeronFrameError.
 * (Past 400 lines: every frame type's offsets and codec sit together, as Aeron's own protocol header
 * keeps them, so a field is named once and its readers and writers are side by side.)
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

/**
 * Field offsets, named once per frame as Aeron's flyweights name them (aeron_udp_protocol.h); every
 * read and write of a frame field in src/aeron goes through these.
 */
export const HeaderField = { frameLength: 0, version: 4, flags: 5, type: 6 } as const;
export const DataField = { termOffset: 8, sessionId: 12, streamId: 16, termId: 20, reservedValue: 24, payload: 32 } as const;
export const SetupField = { termOffset: 8, sessionId: 12, streamId: 16, initialTermId: 20, activeTermId: 24, termLength: 28, mtu: 32, ttl: 36 } as const;
export const SmField = { sessionId: 8, streamId: 12, consumptionTermId: 16, consumptionTermOffset: 20, receiverWindow: 24, receiverId: 28, groupTag: 36 } as const;
export const NakField = { sessionId: 8, streamId: 12, termId: 16, termOffset: 20, length: 24 } as const;
export const RttmField = { sessionId: 8, streamId: 12, echoTimestampNs: 16, receptionDeltaNs: 24, receiverId: 32 } as const;
export const ErrField = { sessionId: 8, streamId: 12, receiverId: 16, groupTag: 24, errorCode: 32, textLength: 36, text: 40 } as const;

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
  const version = buf.readInt8(offset + HeaderField.version);
  if (version !== PROTOCOL_VERSION) throw new AeronFrameError(`unsupported protocol version ${version}`);
  return buf.readInt16LE(offset + HeaderField.type);
}

export function decodeDataHeader(buf: Buffer, offset = 0): DataHeader {
  need(buf, offset, DATA_HEADER_LENGTH, 'DATA header');
  const type = frameTypeAt(buf, offset);
  if (type !== FrameType.Data && type !== FrameType.Pad) throw new AeronFrameError(`type ${type} is not DATA or PAD`);
  const frameLength = buf.readInt32LE(offset + HeaderField.frameLength);
  if (frameLength < 0 || (frameLength > 0 && frameLength < DATA_HEADER_LENGTH)) {
    throw new AeronFrameError(`DATA frame_length ${frameLength} is invalid`);
  }
  return {
    type,
    frameLength,
    flags: buf[offset + HeaderField.flags] as number,
    termOffset: buf.readInt32LE(offset + DataField.termOffset),
    sessionId: buf.readInt32LE(offset + DataField.sessionId),
    streamId: buf.readInt32LE(offset + DataField.streamId),
    termId: buf.readInt32LE(offset + DataField.termId),
    reservedValue: buf.readBigInt64LE(offset + DataField.reservedValue),
  };
}

export function encodeDataHeader(h: Omit<DataHeader, 'reservedValue'> & { reservedValue?: bigint }, out: Buffer, offset = 0): void {
  out.writeInt32LE(h.frameLength, offset + HeaderField.frameLength);
  out[offset + HeaderField.version] = PROTOCOL_VERSION;
  out[offset + HeaderField.flags] = h.flags;
  out.writeInt16LE(h.type, offset + HeaderField.type);
  out.writeInt32LE(h.termOffset, offset + DataField.termOffset);
  out.writeInt32LE(h.sessionId, offset + DataField.sessionId);
  out.writeInt32LE(h.streamId, offset + DataField.streamId);
  out.writeInt32LE(h.termId, offset + DataField.termId);
  out.writeBigInt64LE(h.reservedValue ?? 0n, offset + DataField.reservedValue);
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
    flags: buf[offset + HeaderField.flags] as number,
    termOffset: buf.readInt32LE(offset + SetupField.termOffset),
    sessionId: buf.readInt32LE(offset + SetupField.sessionId),
    streamId: buf.readInt32LE(offset + SetupField.streamId),
    initialTermId: buf.readInt32LE(offset + SetupField.initialTermId),
    activeTermId: buf.readInt32LE(offset + SetupField.activeTermId),
    termLength: buf.readInt32LE(offset + SetupField.termLength),
    mtu: buf.readInt32LE(offset + SetupField.mtu),
    ttl: buf.readInt32LE(offset + SetupField.ttl),
  };
}

function header(out: Buffer, length: number, flags: number, type: number): void {
  out.writeInt32LE(length, HeaderField.frameLength);
  out[HeaderField.version] = PROTOCOL_VERSION;
  out[HeaderField.flags] = flags;
  out.writeInt16LE(type, HeaderField.type);
}

export function encodeSetup(f: Omit<SetupFrame, 'type'>): Buffer {
  const out = Buffer.alloc(SETUP_LENGTH);
  header(out, SETUP_LENGTH, f.flags, FrameType.Setup);
  out.writeInt32LE(f.termOffset, SetupField.termOffset);
  out.writeInt32LE(f.sessionId, SetupField.sessionId);
  out.writeInt32LE(f.streamId, SetupField.streamId);
  out.writeInt32LE(f.initialTermId, SetupField.initialTermId);
  out.writeInt32LE(f.activeTermId, SetupField.activeTermId);
  out.writeInt32LE(f.termLength, SetupField.termLength);
  out.writeInt32LE(f.mtu, SetupField.mtu);
  out.writeInt32LE(f.ttl, SetupField.ttl);
  return out;
}

export function decodeStatusMessage(buf: Buffer, offset = 0): StatusMessage {
  need(buf, offset, SM_LENGTH, 'SM');
  if (frameTypeAt(buf, offset) !== FrameType.Sm) throw new AeronFrameError('not an SM frame');
  const frameLength = buf.readInt32LE(offset + HeaderField.frameLength);
  if (frameLength !== SM_LENGTH && frameLength !== SM_WITH_GROUP_TAG_LENGTH) {
    throw new AeronFrameError(`SM frame_length ${frameLength} is neither 36 nor 44`);
  }
  need(buf, offset, frameLength, 'SM');
  const sm: StatusMessage = {
    type: FrameType.Sm,
    flags: buf[offset + HeaderField.flags] as number,
    sessionId: buf.readInt32LE(offset + SmField.sessionId),
    streamId: buf.readInt32LE(offset + SmField.streamId),
    consumptionTermId: buf.readInt32LE(offset + SmField.consumptionTermId),
    consumptionTermOffset: buf.readInt32LE(offset + SmField.consumptionTermOffset),
    receiverWindow: buf.readInt32LE(offset + SmField.receiverWindow),
    receiverId: buf.readBigInt64LE(offset + SmField.receiverId),
  };
  return frameLength === SM_WITH_GROUP_TAG_LENGTH ? { ...sm, groupTag: buf.readBigInt64LE(offset + SmField.groupTag) } : sm;
}

export function encodeStatusMessage(f: Omit<StatusMessage, 'type'>): Buffer {
  const length = f.groupTag === undefined ? SM_LENGTH : SM_WITH_GROUP_TAG_LENGTH;
  const out = Buffer.alloc(length);
  header(out, length, f.flags, FrameType.Sm);
  out.writeInt32LE(f.sessionId, SmField.sessionId);
  out.writeInt32LE(f.streamId, SmField.streamId);
  out.writeInt32LE(f.consumptionTermId, SmField.consumptionTermId);
  out.writeInt32LE(f.consumptionTermOffset, SmField.consumptionTermOffset);
  out.writeInt32LE(f.receiverWindow, SmField.receiverWindow);
  out.writeBigInt64LE(f.receiverId, SmField.receiverId);
  if (f.groupTag !== undefined) out.writeBigInt64LE(f.groupTag, SmField.groupTag);
  return out;
}

export function decodeNak(buf: Buffer, offset = 0): NakFrame {
  need(buf, offset, NAK_LENGTH, 'NAK');
  if (frameTypeAt(buf, offset) !== FrameType.Nak) throw new AeronFrameError('not a NAK frame');
  return {
    type: FrameType.Nak,
    flags: buf[offset + HeaderField.flags] as number,
    sessionId: buf.readInt32LE(offset + NakField.sessionId),
    streamId: buf.readInt32LE(offset + NakField.streamId),
    termId: buf.readInt32LE(offset + NakField.termId),
    termOffset: buf.readInt32LE(offset + NakField.termOffset),
    length: buf.readInt32LE(offset + NakField.length),
  };
}

export function encodeNak(f: Omit<NakFrame, 'type'>): Buffer {
  const out = Buffer.alloc(NAK_LENGTH);
  header(out, NAK_LENGTH, f.flags, FrameType.Nak);
  out.writeInt32LE(f.sessionId, NakField.sessionId);
  out.writeInt32LE(f.streamId, NakField.streamId);
  out.writeInt32LE(f.termId, NakField.termId);
  out.writeInt32LE(f.termOffset, NakField.termOffset);
  out.writeInt32LE(f.length, NakField.length);
  return out;
}

export function decodeRttm(buf: Buffer, offset = 0): RttmFrame {
  need(buf, offset, RTTM_LENGTH, 'RTTM');
  if (frameTypeAt(buf, offset) !== FrameType.Rttm) throw new AeronFrameError('not an RTTM frame');
  return {
    type: FrameType.Rttm,
    flags: buf[offset + HeaderField.flags] as number,
    sessionId: buf.readInt32LE(offset + RttmField.sessionId),
    streamId: buf.readInt32LE(offset + RttmField.streamId),
    echoTimestampNs: buf.readBigInt64LE(offset + RttmField.echoTimestampNs),
    receptionDeltaNs: buf.readBigInt64LE(offset + RttmField.receptionDeltaNs),
    receiverId: buf.readBigInt64LE(offset + RttmField.receiverId),
  };
}

export function encodeRttm(f: Omit<RttmFrame, 'type'>): Buffer {
  const out = Buffer.alloc(RTTM_LENGTH);
  header(out, RTTM_LENGTH, f.flags, FrameType.Rttm);
  out.writeInt32LE(f.sessionId, RttmField.sessionId);
  out.writeInt32LE(f.streamId, RttmField.streamId);
  out.writeBigInt64LE(f.echoTimestampNs, RttmField.echoTimestampNs);
  out.writeBigInt64LE(f.receptionDeltaNs, RttmField.receptionDeltaNs);
  out.writeBigInt64LE(f.receiverId, RttmField.receiverId);
  return out;
}

export function decodeErr(buf: Buffer, offset = 0): ErrFrame {
  need(buf, offset, ERR_HEADER_LENGTH, 'ERR');
  if (frameTypeAt(buf, offset) !== FrameType.Err) throw new AeronFrameError('not an ERR frame');
  const frameLength = buf.readInt32LE(offset + HeaderField.frameLength);
  const textLength = buf.readInt32LE(offset + ErrField.textLength);
  if (textLength < 0 || textLength > ERR_MAX_TEXT_LENGTH) throw new AeronFrameError(`ERR text length ${textLength} is invalid`);
  if (frameLength < ErrField.text + textLength) throw new AeronFrameError(`ERR frame_length ${frameLength} is shorter than its text`);
  need(buf, offset, ErrField.text + textLength, 'ERR text');
  return {
    type: FrameType.Err,
    flags: buf[offset + HeaderField.flags] as number,
    sessionId: buf.readInt32LE(offset + ErrField.sessionId),
    streamId: buf.readInt32LE(offset + ErrField.streamId),
    receiverId: buf.readBigInt64LE(offset + ErrField.receiverId),
    groupTag: buf.readBigInt64LE(offset + ErrField.groupTag),
    errorCode: buf.readInt32LE(offset + ErrField.errorCode),
    message: buf.toString('latin1', offset + ErrField.text, offset + ErrField.text + textLength),
  };
}

export function encodeErr(f: Omit<ErrFrame, 'type'>): Buffer {
  const text = Buffer.from(f.message, 'latin1').subarray(0, ERR_MAX_TEXT_LENGTH);
  const out = Buffer.alloc(ERR_HEADER_LENGTH + text.length);
  header(out, out.length, f.flags, FrameType.Err);
  out.writeInt32LE(f.sessionId, ErrField.sessionId);
  out.writeInt32LE(f.streamId, ErrField.streamId);
  out.writeBigInt64LE(f.receiverId, ErrField.receiverId);
  out.writeBigInt64LE(f.groupTag, ErrField.groupTag);
  out.writeInt32LE(f.errorCode, ErrField.errorCode);
  out.writeInt32LE(text.length, ErrField.textLength);
  text.copy(out, ErrField.text);
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

import { DATA_HEADER_LENGTH, DataFlag, FrameType, align32, decodeDataDatagram, decodeSetup } from '../../src/aeron/frame-codec.js';
import type { SetupFrame } from '../../src/aeron/frame-codec.js';
import { computePosition } from '../../src/aeron/term-math.js';
import type { CapturedDatagram } from './aeron-vectors.js';

export interface CapturedMessage {
  /** Capture time (µs) of the datagram that carried the message's first fragment. */
  readonly tUs: number;
  readonly position: number;
  readonly payload: Buffer;
}

export function captureSetup(captured: readonly CapturedDatagram[]): SetupFrame {
  const setup = captured.find((d) => d.dir === 'pub->sub' && d.type === FrameType.Setup);
  if (setup === undefined) throw new Error('capture has no SETUP');
  return decodeSetup(setup.bytes);
}

/** Is this a DATA datagram carrying frames (not a 32-byte heartbeat)? */
export function isDataDatagram(bytes: Buffer): boolean {
  const type = bytes.readInt16LE(6);
  return (type === FrameType.Data || type === FrameType.Pad) && !(bytes.length === DATA_HEADER_LENGTH && bytes.readInt32LE(0) === 0);
}

export function datagramPosition(bytes: Buffer, setup: SetupFrame): number {
  return computePosition(bytes.readInt32LE(20), bytes.readInt32LE(8), setup.termLength, setup.initialTermId);
}

/** The messages the C publisher sent, reassembled from its DATA frames (retransmits de-duplicated). */
export function capturedMessages(captured: readonly CapturedDatagram[]): CapturedMessage[] {
  const setup = captureSetup(captured);
  const frames = new Map<number, { tUs: number; flags: number; type: number; payload: Buffer }>();
  for (const d of captured) {
    if (d.dir === 'sub->pub' || !isDataDatagram(d.bytes)) continue;
    for (const f of decodeDataDatagram(d.bytes)) {
      const pos = computePosition(f.termId, f.termOffset, setup.termLength, setup.initialTermId);
      if (!frames.has(pos)) frames.set(pos, { tUs: d.tUs, flags: f.flags, type: f.type, payload: Buffer.from(f.payload) });
    }
  }
  const out: CapturedMessage[] = [];
  let parts: Buffer[] = [];
  let start = { tUs: 0, position: 0 };
  for (const pos of [...frames.keys()].sort((a, b) => a - b)) {
    const f = frames.get(pos);
    if (f === undefined || f.type === FrameType.Pad) continue;
    if ((f.flags & DataFlag.Begin) !== 0) {
      parts = [];
      start = { tUs: f.tUs, position: pos };
    }
    parts.push(f.payload);
    if ((f.flags & DataFlag.End) !== 0) out.push({ ...start, payload: Buffer.concat(parts) });
  }
  return out;
}

/** Rebuilds the log bytes [0, end) from DATA datagrams (PAD headers only, as on the wire). */
export function rebuildLog(datagrams: readonly Buffer[], setup: SetupFrame): Map<number, Buffer> {
  const log = new Map<number, Buffer>();
  for (const d of datagrams) {
    if (!isDataDatagram(d)) continue;
    let pos = datagramPosition(d, setup);
    for (const f of decodeDataDatagram(d)) {
      const len = f.type === FrameType.Pad ? DATA_HEADER_LENGTH : align32(f.frameLength);
      if (!log.has(pos)) log.set(pos, d.subarray(pos - datagramPosition(d, setup), pos - datagramPosition(d, setup) + len));
      pos += f.type === FrameType.Pad ? f.frameLength : len;
    }
  }
  return log;
}

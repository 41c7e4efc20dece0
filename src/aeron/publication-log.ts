import { DATA_HEADER_LENGTH, DataField, DataFlag, FrameType, HeaderField, PROTOCOL_VERSION, align32 } from './frame-codec.js';
import { fragmentedLength, maxMessageLength } from './term-math.js';

const PARTITIONS = 3;
/** frameStart's index: the first frame start within each block of this many bytes of a term. */
const BLOCK_SHIFT = 16;

/**
 * The publication's three preallocated term buffers, laid out exactly as an Aeron log (§2): 32-byte
 * aligned frames written in place, fragmentation at mtu - 32, a PAD frame over a term's tail when the
 * next message does not fit, no message across terms. Positions are stream byte offsets.
 */
export class PublicationLog {
  readonly terms: Buffer[];
  /**
   * The same partitions as DataViews: the hot path (one header per message, a scan per datagram)
   * writes and reads its little-endian fields through these, which V8 compiles to plain loads and
   * stores, instead of Buffer's checked write*LE/read*LE calls.
   */
  private readonly views: DataView[];
  readonly maxPayload: number;
  readonly maxMessageLength: number;
  /** Next byte to be written (the producer's tail). */
  tail = 0;
  /**
   * Per partition, per 64 KiB block of the term: the offset of the first frame written in the block in
   * the partition's current lap, or -1. frameStart walks from there instead of from the term's start.
   */
  private readonly blockStarts: Int32Array[];
  /** The block of the last frame noted in blockStarts. */
  private notedBlock = -1;

  constructor(
    readonly termLength: number,
    readonly initialTermId: number,
    readonly sessionId: number,
    readonly streamId: number,
    readonly mtu: number,
  ) {
    this.terms = Array.from({ length: PARTITIONS }, () => Buffer.alloc(termLength));
    this.views = this.terms.map((t) => new DataView(t.buffer, t.byteOffset, t.byteLength));
    this.blockStarts = this.terms.map(() => new Int32Array(Math.ceil(termLength / (1 << BLOCK_SHIFT))).fill(-1));
    this.maxPayload = mtu - DATA_HEADER_LENGTH;
    this.maxMessageLength = maxMessageLength(termLength);
  }

  termFor(position: number): Buffer {
    return this.terms[Math.floor(position / this.termLength) % PARTITIONS] as Buffer;
  }

  private viewFor(position: number): DataView {
    return this.views[Math.floor(position / this.termLength) % PARTITIONS] as DataView;
  }

  termIdFor(position: number): number {
    return (this.initialTermId + Math.floor(position / this.termLength)) | 0;
  }

  /** Bytes the log grows by if `length` is appended now (a tail PAD included). */
  growthFor(length: number): number {
    const framed = fragmentedLength(length, this.maxPayload);
    const offset = this.tail % this.termLength;
    return offset + framed > this.termLength ? this.termLength - offset + framed : framed;
  }

  /** Appends one message (fragmenting it when needed); the caller checked limits. Returns the new tail. */
  append(src: Buffer, start: number, length: number): number {
    const framed = fragmentedLength(length, this.maxPayload);
    let offset = this.tail % this.termLength;
    if (offset + framed > this.termLength) {
      this.appendPadding(this.termLength - offset);
      offset = 0;
    }
    const term = this.termFor(this.tail);
    const termId = this.termIdFor(this.tail);
    if (length <= this.maxPayload) {
      this.writeFrame(term, this.viewFor(this.tail), offset, termId, DataFlag.Unfragmented, src, start, length);
      this.tail += align32(DATA_HEADER_LENGTH + length);
      return this.tail;
    }
    let remaining = length;
    let flags: number = DataFlag.Begin;
    let at = start;
    while (remaining > 0) {
      const chunk = Math.min(remaining, this.maxPayload);
      if (chunk === remaining) flags |= DataFlag.End;
      this.writeFrame(term, this.viewFor(this.tail), offset, termId, flags, src, at, chunk);
      const step = align32(DATA_HEADER_LENGTH + chunk);
      offset += step;
      this.tail += step;
      at += chunk;
      remaining -= chunk;
      flags = 0;
    }
    return this.tail;
  }

  /**
   * Appends a PAD frame of `length` bytes (rounded up to 32, at least one header), cut at the term's
   * end; returns the new tail. Subscribers skip padding wherever it stands (Aeron's
   * ExclusivePublication.appendPadding), and only its 32-byte header goes on the wire.
   */
  appendPadding(length: number): number {
    const offset = this.tail % this.termLength;
    const padLength = Math.min(align32(Math.max(length, DATA_HEADER_LENGTH)), this.termLength - offset);
    this.writeHeader(this.viewFor(this.tail), offset, padLength, DataFlag.Unfragmented, FrameType.Pad, this.termIdFor(this.tail));
    this.tail += padLength;
    return this.tail;
  }

  /**
   * Notes the first frame written in a block (frames are written in order, so the first one whose
   * block differs from the last noted one), at `offset` of the tail's partition; a frame at offset 0
   * starts the partition's new lap, whose blocks are unknown until written.
   */
  private noteFrame(offset: number): void {
    const blocks = this.blockStarts[Math.floor(this.tail / this.termLength) % PARTITIONS] as Int32Array;
    if (offset === 0) blocks.fill(-1);
    const b = offset >>> BLOCK_SHIFT;
    blocks[b] = offset;
    this.notedBlock = b;
  }

  private writeHeader(view: DataView, offset: number, frameLength: number, flags: number, type: number, termId: number): void {
    if (offset >>> BLOCK_SHIFT !== this.notedBlock || offset === 0) this.noteFrame(offset);
    view.setInt32(offset + HeaderField.frameLength, frameLength, true);
    // version (byte 4), flags (byte 5) and type (bytes 6-7, little-endian) as one int32.
    view.setInt32(offset + HeaderField.version, PROTOCOL_VERSION | (flags << 8) | (type << 16), true);
    view.setInt32(offset + DataField.termOffset, offset, true);
    view.setInt32(offset + DataField.sessionId, this.sessionId, true);
    view.setInt32(offset + DataField.streamId, this.streamId, true);
    view.setInt32(offset + DataField.termId, termId, true);
    view.setInt32(offset + DataField.reservedValue, 0, true);
    view.setInt32(offset + DataField.reservedValue + 4, 0, true);
  }

  private writeFrame(term: Buffer, view: DataView, offset: number, termId: number, flags: number, src: Buffer, start: number, length: number): void {
    const frameLength = DATA_HEADER_LENGTH + length;
    this.writeHeader(view, offset, frameLength, flags, FrameType.Data, termId);
    const at = offset + DATA_HEADER_LENGTH;
    // The padding up to the next 32-byte boundary travels on the wire: keep it zero, as Aeron's
    // cleaned terms are, instead of leaking what an earlier lap of this partition held. It lies in
    // the frame's last 32-byte block, which (the frame being longer than its header) starts after
    // the header: four 8-byte stores clear that block before the payload goes over its start,
    // cheaper than a byte loop or a native fill call.
    const aligned = align32(frameLength);
    if (aligned !== frameLength) {
      const last = offset + aligned - 32;
      view.setFloat64(last, 0);
      view.setFloat64(last + 8, 0);
      view.setFloat64(last + 16, 0);
      view.setFloat64(last + 24, 0);
    }
    // A whole buffer goes in with TypedArray#set (a memcpy, no view object); a part of one through copy.
    if (start === 0 && length === src.length) term.set(src, at);
    else src.copy(term, at, start, start + length);
  }

  /**
   * Scans whole frames from `position` for one datagram of at most `mtu` bytes that stays below
   * `limit`. Returns the bytes to send (`wireLength`) and how far the position moves (`advance`, which
   * includes a PAD frame's unsent body). Zero when nothing fits.
   */
  scan(position: number, limit: number, mtu: number): { wireLength: number; advance: number } {
    const view = this.viewFor(position);
    const start = position % this.termLength;
    const max = Math.min(limit - position, mtu, this.termLength - start);
    let offset = start;
    let wire = 0;
    while (wire < max) {
      const frameLength = view.getInt32(offset + HeaderField.frameLength, true);
      const type = view.getInt16(offset + HeaderField.type, true);
      if (type === FrameType.Pad) {
        if (wire + DATA_HEADER_LENGTH > max) break;
        return { wireLength: wire + DATA_HEADER_LENGTH, advance: wire + frameLength };
      }
      if (frameLength <= 0) break;
      const aligned = align32(frameLength);
      if (wire + aligned > max) break;
      wire += aligned;
      offset += aligned;
    }
    return { wireLength: wire, advance: wire };
  }

  /**
   * The start of the message that holds `position` (or `position` itself when a message starts
   * there). Rejoining a new receiver image there means it never sees a fragment without its BEGIN.
   * A position inside a frame (an SM whose offset is not a frame boundary) maps to the start of that
   * frame's message too, so the SETUP built from it is always 32-aligned and on a frame boundary.
   */
  messageStart(position: number): number {
    const termStart = position - (position % this.termLength);
    const target = position - termStart;
    const term = this.termFor(position);
    let offset = 0;
    // Start of the message being walked, or of the next one once the walked frame ended a message.
    let start = 0;
    while (offset < target) {
      const frameLength = term.readInt32LE(offset + HeaderField.frameLength);
      if (frameLength <= 0) break;
      const pad = term.readInt16LE(offset + HeaderField.type) === FrameType.Pad;
      const flags = term[offset + HeaderField.flags] as number;
      if (pad || (flags & DataFlag.Begin) !== 0) start = offset;
      const next = offset + (pad ? frameLength : align32(frameLength));
      if (next > target) break;
      if (pad || (flags & DataFlag.End) !== 0) start = next;
      offset = next;
    }
    return termStart + start;
  }

  /**
   * The start of the frame that holds `position`: a NAK names a frame boundary when it comes from a
   * C receiver, but resending from anywhere else would put payload bytes where the receiver reads a
   * header.
   */
  frameStart(position: number): number {
    const termStart = position - (position % this.termLength);
    const target = position - termStart;
    const view = this.viewFor(position);
    // From the last frame known to start at or before the target (the index of 64 KiB blocks), else
    // from the term's start: the walk covers at most a block and a frame, not the whole term.
    const blocks = this.blockStarts[Math.floor(position / this.termLength) % PARTITIONS] as Int32Array;
    let offset = 0;
    for (let b = target >>> BLOCK_SHIFT; b >= 0; b--) {
      const at = blocks[b] as number;
      if (at !== -1 && at <= target) {
        offset = at;
        break;
      }
    }
    while (offset < target) {
      const frameLength = view.getInt32(offset + HeaderField.frameLength, true);
      if (frameLength <= 0) break;
      const next = offset + (view.getInt16(offset + HeaderField.type, true) === FrameType.Pad ? frameLength : align32(frameLength));
      if (next > target) break;
      offset = next;
    }
    return termStart + offset;
  }
}

import { DATA_HEADER_LENGTH, DataField, DataFlag, FrameType, HeaderField, SmFlag, align32, encodeNak, encodeStatusMessage } from './frame-codec.js';
import { computePosition, receiverWindowFor, termIdAt } from './term-math.js';

export interface ImageParams {
  readonly sessionId: number;
  readonly streamId: number;
  readonly initialTermId: number;
  readonly activeTermId: number;
  readonly termOffset: number;
  readonly termLength: number;
  readonly mtu: number;
  readonly receiverId: bigint;
  /** Sends a control datagram (SM/NAK) to the publication. */
  readonly sendControl: (datagram: Buffer) => void;
  /**
   * One whole message (fragments joined). `buffer[offset, offset + length)` is valid only during the
   * call: it is a view into the term (or the reassembly buffer).
   */
  readonly onMessage: (buffer: Buffer, offset: number, length: number, image: ReceiverImage) => void;
  readonly initialWindow?: number;
  readonly smIntervalMs?: number;
  readonly nakDelayMs?: number;
  readonly nakRetryMs?: number;
  readonly livenessTimeoutMs?: number;
  readonly eosDrainMs?: number;
}

export type ImageState = 'active' | 'draining' | 'closed';

/**
 * The receiving side of one publication (C: aeron_publication_image.c, §3.2, §4.1, §8): rebuilds the
 * sender's terms from datagrams, delivers messages in order exactly once, NAKs gaps, sends SMs as it
 * consumes, and drains on end of stream.
 */
export class ReceiverImage {
  readonly sessionId: number;
  readonly streamId: number;
  readonly initialTermId: number;
  readonly termLength: number;
  readonly joinPosition: number;
  readonly window: number;
  private readonly terms: Buffer[];
  /** Next position to deliver (the subscriber position). */
  rebuildPosition: number;
  hwmPosition: number;
  private lastSmPosition: number;
  private nextSmMs = Number.NEGATIVE_INFINITY;
  private lastPacketMs: number;
  private eosPosition = Number.POSITIVE_INFINITY;
  private drainUntilMs = Number.POSITIVE_INFINITY;
  private gap: { termId: number; termOffset: number; length: number; dueMs: number } | undefined;
  private assembly: Buffer = Buffer.allocUnsafe(64 * 1024);
  private assembled = -1;
  private cleanedTermCount: number;
  stateValue: ImageState = 'active';
  readonly counters = { messages: 0, bytes: 0, naksSent: 0, smsSent: 0, duplicates: 0, overruns: 0 };

  constructor(
    private readonly p: ImageParams,
    nowMs: number,
  ) {
    this.sessionId = p.sessionId;
    this.streamId = p.streamId;
    this.initialTermId = p.initialTermId;
    this.termLength = p.termLength;
    this.terms = [Buffer.alloc(p.termLength), Buffer.alloc(p.termLength), Buffer.alloc(p.termLength)];
    this.joinPosition = computePosition(p.activeTermId, p.termOffset, p.termLength, p.initialTermId);
    this.rebuildPosition = this.joinPosition;
    this.hwmPosition = this.joinPosition;
    this.lastSmPosition = this.joinPosition;
    this.window = receiverWindowFor(p.termLength, p.initialWindow);
    this.lastPacketMs = nowMs;
    this.cleanedTermCount = Math.floor(this.joinPosition / p.termLength);
  }

  get state(): ImageState {
    return this.stateValue;
  }

  get endOfStream(): boolean {
    return this.eosPosition !== Number.POSITIVE_INFINITY;
  }

  private termFor(position: number): Buffer {
    return this.terms[Math.floor(position / this.termLength) % 3] as Buffer;
  }

  /** Inserts one DATA/PAD datagram (already checked: ≥ 32 bytes, version 0, our session/stream). */
  insert(buf: Buffer, length: number, nowMs: number): void {
    if (this.stateValue === 'closed') return;
    const termOffset = buf.readInt32LE(DataField.termOffset);
    const termId = buf.readInt32LE(DataField.termId);
    if (((termId - this.initialTermId) | 0) < 0 || termOffset < 0 || termOffset % 32 !== 0 || termOffset >= this.termLength) return;
    const packetPosition = computePosition(termId, termOffset, this.termLength, this.initialTermId);
    const isHeartbeat = length === DATA_HEADER_LENGTH && buf.readInt32LE(HeaderField.frameLength) === 0;
    const proposed = isHeartbeat ? packetPosition : packetPosition + length;
    if (proposed > this.lastSmPosition + this.termLength / 2) {
      this.counters.overruns++;
      return;
    }
    if (isHeartbeat) {
      if (packetPosition < Math.max(0, this.lastSmPosition - this.termLength)) return;
      this.lastPacketMs = nowMs;
      if (packetPosition > this.hwmPosition) this.hwmPosition = packetPosition;
      if (((buf[HeaderField.flags] as number) & DataFlag.Eos) !== 0) this.eosPosition = packetPosition;
      this.poll(nowMs);
      return;
    }
    if (packetPosition < this.rebuildPosition || termOffset + length > this.termLength) {
      this.counters.duplicates++;
      this.lastPacketMs = nowMs;
      return;
    }
    const term = this.termFor(packetPosition);
    if (term.readInt32LE(termOffset + HeaderField.frameLength) === 0) {
      buf.copy(term, termOffset, 0, length);
    } else {
      this.counters.duplicates++;
    }
    this.lastPacketMs = nowMs;
    if (proposed > this.hwmPosition) this.hwmPosition = proposed;
    this.poll(nowMs);
  }

  /** Delivers every complete frame from the rebuild position, in order. */
  private poll(nowMs: number): void {
    const termLength = this.termLength;
    let position = this.rebuildPosition;
    for (;;) {
      const term = this.termFor(position);
      const offset = position % termLength;
      const frameLength = term.readInt32LE(offset + HeaderField.frameLength);
      if (frameLength <= 0) break;
      const type = term.readInt16LE(offset + HeaderField.type);
      if (type === FrameType.Pad) {
        position += frameLength;
        this.onTermCrossed(position);
        continue;
      }
      const flags = term[offset + HeaderField.flags] as number;
      const payloadLength = frameLength - DATA_HEADER_LENGTH;
      const payloadOffset = offset + DATA_HEADER_LENGTH;
      if ((flags & DataFlag.Unfragmented) === DataFlag.Unfragmented) {
        this.deliver(term, payloadOffset, payloadLength);
      } else if ((flags & DataFlag.Begin) !== 0) {
        this.assembled = 0;
        this.append(term, payloadOffset, payloadLength);
      } else if (this.assembled >= 0) {
        this.append(term, payloadOffset, payloadLength);
        if ((flags & DataFlag.End) !== 0) {
          this.deliver(this.assembly, 0, this.assembled);
          this.assembled = -1;
        }
      }
      position += align32(frameLength);
      if (position % termLength === 0) this.onTermCrossed(position);
    }
    this.rebuildPosition = position;
    // As the C receiver: a new SM position is scheduled only when consumption moved more than a
    // quarter window; the 200 ms SMs in between repeat the last scheduled position.
    if (position > this.lastSmPosition + this.window / 4) {
      this.lastSmPosition = position;
      this.sendStatus(nowMs);
    }
  }

  /** Zero the partition the term after next will use (it held an older, fully consumed term). */
  private onTermCrossed(position: number): void {
    const count = Math.floor(position / this.termLength);
    while (this.cleanedTermCount < count) {
      this.cleanedTermCount++;
      this.terms[(this.cleanedTermCount + 1) % 3]?.fill(0);
    }
  }

  private append(src: Buffer, offset: number, length: number): void {
    if (this.assembled + length > this.assembly.length) {
      const next = Buffer.allocUnsafe(Math.max(this.assembly.length * 2, this.assembled + length));
      this.assembly.copy(next, 0, 0, this.assembled);
      this.assembly = next;
    }
    src.copy(this.assembly, this.assembled, offset, offset + length);
    this.assembled += length;
  }

  private deliver(buffer: Buffer, offset: number, length: number): void {
    this.counters.messages++;
    this.counters.bytes += length;
    this.p.onMessage(buffer, offset, length, this);
  }

  private sendStatus(nowMs: number): void {
    const draining = this.stateValue === 'draining';
    this.p.sendControl(
      encodeStatusMessage({
        flags: draining ? SmFlag.Eos : 0,
        sessionId: this.sessionId,
        streamId: this.streamId,
        consumptionTermId: termIdAt(this.lastSmPosition, this.termLength, this.initialTermId),
        consumptionTermOffset: this.lastSmPosition % this.termLength,
        receiverWindow: this.window,
        receiverId: this.p.receiverId,
      }),
    );
    this.counters.smsSent++;
    this.nextSmMs = nowMs + (this.p.smIntervalMs ?? 200);
  }

  /** Timers: SMs, gap scan + NAKs, end of stream, liveness. */
  doWork(nowMs: number): void {
    if (this.stateValue === 'closed') return;
    if (this.stateValue === 'active') {
      if (this.rebuildPosition >= this.eosPosition) {
        this.stateValue = 'draining';
        this.drainUntilMs = nowMs + (this.p.eosDrainMs ?? 1000);
        this.nextSmMs = Number.NEGATIVE_INFINITY;
      } else if (nowMs - this.lastPacketMs > (this.p.livenessTimeoutMs ?? 10_000)) {
        this.stateValue = 'closed';
        return;
      }
    }
    if (this.stateValue === 'draining' && nowMs >= this.drainUntilMs) {
      this.stateValue = 'closed';
      return;
    }
    if (nowMs >= this.nextSmMs) this.sendStatus(nowMs);
    this.scanForGap(nowMs);
  }

  private scanForGap(nowMs: number): void {
    const position = this.rebuildPosition;
    if (this.hwmPosition <= position) {
      this.gap = undefined;
      return;
    }
    const term = this.termFor(position);
    const offset = position % this.termLength;
    if (term.readInt32LE(offset + HeaderField.frameLength) !== 0) return; // poll delivers it
    const limit = Math.min(this.termLength, offset + (this.hwmPosition - position));
    let end = offset + 32;
    while (end < limit && term.readInt32LE(end + HeaderField.frameLength) === 0) end += 32;
    end = Math.min(end, limit);
    const termId = termIdAt(position, this.termLength, this.initialTermId);
    const length = end - offset;
    const g = this.gap;
    if (g === undefined || g.termId !== termId || g.termOffset !== offset || g.length !== length) {
      this.gap = { termId, termOffset: offset, length, dueMs: nowMs + (this.p.nakDelayMs ?? 0.1) };
      return;
    }
    if (nowMs >= g.dueMs) {
      this.p.sendControl(encodeNak({ flags: 0, sessionId: this.sessionId, streamId: this.streamId, termId, termOffset: offset, length }));
      this.counters.naksSent++;
      g.dueMs = nowMs + (this.p.nakRetryMs ?? 10);
    }
  }
}

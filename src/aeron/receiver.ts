import { DATA_HEADER_LENGTH, DataField, DataFlag, FrameType, HeaderField, PROTOCOL_VERSION, SETUP_LENGTH, SmFlag, decodeSetup, encodeStatusMessage } from './frame-codec.js';
import { ReceiverImage } from './receiver-image.js';
import type { ImageParams } from './receiver-image.js';
import { DEFAULT_RECEIVER_WINDOW, isValidTermLength } from './term-math.js';

export interface PeerAddress {
  readonly address: string;
  readonly port: number;
}

/** The image settings a receiver passes on to every image it creates. */
type ImageSettings = Pick<ImageParams, 'onMessage' | 'initialWindow' | 'smIntervalMs' | 'nakDelayMs' | 'nakRetryMs' | 'livenessTimeoutMs' | 'eosDrainMs'>;

export interface ReceiverParams extends ImageSettings {
  readonly streamId: number;
  /** Accept only this session (like `session-id=` on a subscription). */
  readonly sessionId?: number;
  readonly receiverId: bigint;
  readonly send: (datagram: Buffer, to: PeerAddress) => void;
  readonly onImage?: (event: 'available' | 'unavailable', image: ReceiverImage) => void;
  /** Largest term accepted from a SETUP (each image holds 3 terms in memory). */
  readonly maxTermLength?: number;
}

/**
 * An Aeron unicast receive endpoint for one stream as a state machine (C: aeron_data_packet_dispatcher.c,
 * §3.2, §8): SETUP creates an image, DATA without an image elicits an S-flag SM (at most once a second
 * per session), images deliver messages and send SM/NAK to the address their SETUP came from.
 */
export class Receiver {
  readonly images = new Map<number, ReceiverImage>();
  private readonly pendingSetup = new Map<number, number>();
  readonly counters = { invalidPackets: 0, setupsRejected: 0, setupRequests: 0 };

  constructor(private readonly p: ReceiverParams) {}

  onDatagram(buf: Buffer, length: number, from: PeerAddress, nowMs: number): void {
    if (length < 8 || buf[HeaderField.version] !== PROTOCOL_VERSION) {
      this.counters.invalidPackets++;
      return;
    }
    const type = buf.readInt16LE(HeaderField.type);
    if (type === FrameType.Data || type === FrameType.Pad) {
      if (length < DATA_HEADER_LENGTH) {
        this.counters.invalidPackets++;
        return;
      }
      const sessionId = buf.readInt32LE(DataField.sessionId);
      if (buf.readInt32LE(DataField.streamId) !== this.p.streamId || (this.p.sessionId !== undefined && sessionId !== this.p.sessionId)) return;
      const image = this.images.get(sessionId);
      if (image !== undefined) {
        image.insert(buf, length, nowMs);
        return;
      }
      if (((buf[5] as number) & DataFlag.Eos) !== 0) return;
      const pendingUntil = this.pendingSetup.get(sessionId);
      if (pendingUntil !== undefined && nowMs < pendingUntil) return;
      this.pendingSetup.set(sessionId, nowMs + 1000);
      this.counters.setupRequests++;
      this.p.send(
        encodeStatusMessage({ flags: SmFlag.SendSetup, sessionId, streamId: this.p.streamId, consumptionTermId: 0, consumptionTermOffset: 0, receiverWindow: 0, receiverId: this.p.receiverId }),
        from,
      );
      return;
    }
    if (type === FrameType.Setup) {
      if (length < SETUP_LENGTH) {
        this.counters.invalidPackets++;
        return;
      }
      const setup = decodeSetup(buf.subarray(0, length));
      if (setup.streamId !== this.p.streamId || (this.p.sessionId !== undefined && setup.sessionId !== this.p.sessionId)) return;
      if (this.images.has(setup.sessionId)) return;
      if (
        !isValidTermLength(setup.termLength) ||
        setup.termLength > (this.p.maxTermLength ?? 64 * 1024 * 1024) ||
        setup.mtu < 32 ||
        setup.mtu > 65504 ||
        setup.mtu % 32 !== 0 ||
        setup.mtu > (this.p.initialWindow ?? DEFAULT_RECEIVER_WINDOW) ||
        setup.termOffset % 32 !== 0 ||
        ((setup.activeTermId - setup.initialTermId) | 0) < 0
      ) {
        this.counters.setupsRejected++;
        return;
      }
      this.pendingSetup.delete(setup.sessionId);
      const control = { address: from.address, port: from.port };
      const image = new ReceiverImage(
        {
          sessionId: setup.sessionId,
          streamId: setup.streamId,
          initialTermId: setup.initialTermId,
          activeTermId: setup.activeTermId,
          termOffset: setup.termOffset,
          termLength: setup.termLength,
          mtu: setup.mtu,
          receiverId: this.p.receiverId,
          sendControl: (d) => this.p.send(d, control),
          onMessage: this.p.onMessage,
          ...this.timing(),
        },
        nowMs,
      );
      this.images.set(setup.sessionId, image);
      this.p.onImage?.('available', image);
      image.doWork(nowMs); // the first SM goes out at once, carrying the join position
    }
    // SM/NAK/ERR/RTTM reaching a receive endpoint are ignored, as in the C receiver.
  }

  private timing(): Partial<ImageParams> {
    const t: Record<string, number> = {};
    for (const k of ['initialWindow', 'smIntervalMs', 'nakDelayMs', 'nakRetryMs', 'livenessTimeoutMs', 'eosDrainMs'] as const) {
      const v = this.p[k];
      if (v !== undefined) t[k] = v;
    }
    return t as Partial<ImageParams>;
  }

  doWork(nowMs: number): void {
    for (const [sessionId, image] of this.images) {
      image.doWork(nowMs);
      if (image.state === 'closed') {
        this.images.delete(sessionId);
        this.p.onImage?.('unavailable', image);
      }
    }
  }
}

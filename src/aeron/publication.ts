import {
  DATA_HEADER_LENGTH,
  FrameType,
  HeaderField,
  NAK_LENGTH,
  RTTM_LENGTH,
  RttmFlag,
  SM_LENGTH,
  SmFlag,
  decodeErr,
  decodeNak,
  decodeRttm,
  decodeStatusMessage,
  encodeHeartbeat,
  encodeRttm,
  encodeSetup,
} from './frame-codec.js';
import { PublicationLog } from './publication-log.js';
import { DEFAULT_RECEIVER_WINDOW, computePosition, isValidMtu, isValidTermLength, receiverWindowFor } from './term-math.js';

/** offer() results below zero, as Aeron's Publication.offer returns them. */
export const OfferResult = {
  NotConnected: -1,
  BackPressured: -2,
  Closed: -4,
} as const;

export class AeronPublicationError extends Error {
  readonly code: 'AERON_MESSAGE_TOO_LONG' | 'AERON_INVALID_PARAMETER';

  constructor(code: AeronPublicationError['code'], message: string) {
    super(message);
    this.name = 'AeronPublicationError';
    this.code = code;
  }
}

export interface PublicationParams {
  readonly sessionId: number;
  readonly streamId: number;
  readonly initialTermId: number;
  readonly termLength: number;
  readonly mtu: number;
  /** Sends one datagram. The buffer may be a view into the log: it is never rewritten while retained. */
  readonly send: (datagram: Buffer) => void;
  readonly setupIntervalMs?: number;
  readonly heartbeatIntervalMs?: number;
  /** A receiver whose last SM is older than this is gone (C driver: 5 s). */
  readonly connectionTimeoutMs?: number;
  /**
   * Unicast to one endpoint: one receiver at a time, so an SM from a new receiver id means the one
   * before it is gone (its driver restarted) and it stops counting at once instead of after the
   * connection timeout. Multicast and multi-destination channels have several (default false).
   */
  readonly singleReceiver?: boolean;
  /** Longest wait for an EOS SM after the end of stream (C driver: 5 s). */
  readonly lingerMs?: number;
  readonly retransmitLingerMs?: number;
  /** Quiet time after the last offer before padding asks the receiver for a new SM position (see requestConsumptionReport). */
  readonly padIdleMs?: number;
}

export type PublicationState = 'active' | 'draining' | 'lingering' | 'closed';

export interface PublicationCounters {
  setupsSent: number;
  datagramsSent: number;
  heartbeatsSent: number;
  retransmits: number;
  /** Rejoins: a receiver without an image of this session made the sender go back (see onStatusMessage). */
  rewinds: number;
  /** Bytes of the log the sender went back over on rejoins: data sent again, possibly duplicated downstream. */
  rewoundBytes: number;
  naksIgnored: number;
  /** PAD frames appended so that a receiver reports the consumption of the stream's tail. */
  pads: number;
}

/**
 * The sender side of one Aeron unicast publication as a state machine in virtual time: feed it the
 * receiver's control datagrams (`onControl`) and call `doWork(nowMs)`; it sends through `send`.
 * Behaviour mirrors aeron_network_publication.c (§3.1, §4.2, checklist §6), with one addition for
 * loss-free receiver restarts (documented on `onStatusMessage`). (Past 400 lines: one state machine
 * whose setup, flow control, retransmission and linger share the same positions; the log and the
 * receiver tracking live in their own files.)
 */
export class Publication {
  readonly log: PublicationLog;
  readonly sessionId: number;
  readonly streamId: number;
  readonly initialTermId: number;
  readonly termLength: number;
  readonly mtu: number;
  readonly counters: PublicationCounters = { setupsSent: 0, datagramsSent: 0, heartbeatsSent: 0, retransmits: 0, rewinds: 0, rewoundBytes: 0, naksIgnored: 0, pads: 0 };

  /** Next byte to send. */
  senderPosition = 0;
  /** Flow-control limit: SM position + receiver window. */
  senderLimit = 0;
  /** Highest consumption position a receiver reported: everything from here up is retained for a rejoin. */
  consumedPosition = 0;
  /**
   * Consumption every live receiver has reported (the lowest of their latest SM positions; never moves
   * back): what a confirmation waits for. One receiver on unicast; several on multicast.
   */
  confirmedPosition = 0;
  /** A position whose consumption someone waits to see reported (0: none). */
  private reportTarget = 0;
  /** The receiver window of the latest SM: a receiver reports a new position after a quarter of it. */
  private receiverWindow = 0;
  private lastOfferMs = Number.NEGATIVE_INFINITY;
  private hasInitialConnection = false;
  private isSetupElicited = false;
  private isEndOfStream = false;
  private receivedEosSm = false;
  /** Live receivers by receiver id: when their last SM came and the position it reported. */
  private readonly receivers = new Map<bigint, { at: number; position: number; window: number }>();
  /**
   * No receiver's SM is older than the connection timeout before this time (a lower bound of the
   * earliest `at + connectionTimeoutMs`; removing a receiver leaves it valid). isConnected walks the
   * receivers only from here on.
   */
  private nextExpiryMs = Number.POSITIVE_INFINITY;
  private lastSetupMs = Number.NEGATIVE_INFINITY;
  private lastDataOrHeartbeatMs = Number.NEGATIVE_INFINITY;
  private retransmit: { termId: number; termOffset: number; length: number; untilMs: number } | undefined;
  private lingerDeadlineMs = Number.POSITIVE_INFINITY;
  private stateValue: PublicationState = 'active';
  private readonly send: (datagram: Buffer) => void;
  private readonly setupIntervalMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly connectionTimeoutMs: number;
  private readonly lingerMs: number;
  private readonly retransmitLingerMs: number;
  private readonly padIdleMs: number;
  private readonly singleReceiver: boolean;
  /** Producer window: how far offers may run ahead of the sender position. */
  private readonly producerWindow: number;

  constructor(p: PublicationParams) {
    if (!isValidTermLength(p.termLength)) throw new AeronPublicationError('AERON_INVALID_PARAMETER', `term length ${p.termLength} must be a power of two in [64 KiB, 1 GiB]`);
    if (!isValidMtu(p.mtu)) throw new AeronPublicationError('AERON_INVALID_PARAMETER', `mtu ${p.mtu} must be a multiple of 32 in [64, 65504]`);
    this.sessionId = p.sessionId | 0;
    this.streamId = p.streamId | 0;
    this.initialTermId = p.initialTermId | 0;
    this.termLength = p.termLength;
    this.mtu = p.mtu;
    this.send = p.send;
    this.setupIntervalMs = p.setupIntervalMs ?? 100;
    this.heartbeatIntervalMs = p.heartbeatIntervalMs ?? 100;
    this.connectionTimeoutMs = p.connectionTimeoutMs ?? 5000;
    this.lingerMs = p.lingerMs ?? 5000;
    this.retransmitLingerMs = p.retransmitLingerMs ?? 10;
    this.padIdleMs = p.padIdleMs ?? 20;
    this.singleReceiver = p.singleReceiver ?? false;
    // term/2 past the sender position, as Aeron's publication limit. Since the sender stays within one
    // receiver window (<= term/2) of consumption, the tail is at most one term past the consumption
    // position: every unconsumed byte stays in the 3 partitions, available for NAKs and a rejoin.
    this.producerWindow = p.termLength / 2;
    this.log = new PublicationLog(p.termLength, this.initialTermId, this.sessionId, this.streamId, p.mtu);
  }

  get state(): PublicationState {
    return this.stateValue;
  }

  get producerPosition(): number {
    return this.log.tail;
  }

  get maxMessageLength(): number {
    return this.log.maxMessageLength;
  }

  /** A receiver sent a normal SM within the connection timeout. */
  isConnected(nowMs: number): boolean {
    // Every offer asks: before the earliest receiver can have timed out, none has, so the answer is
    // whether there is one, without walking the map (which allocates an entry per receiver).
    if (nowMs < this.nextExpiryMs) return this.receivers.size > 0;
    let connected = false;
    let gone = false;
    let nextExpiry = Number.POSITIVE_INFINITY;
    for (const [id, r] of this.receivers) {
      if (r.at > nowMs - this.connectionTimeoutMs) {
        connected = true;
        nextExpiry = Math.min(nextExpiry, r.at + this.connectionTimeoutMs);
      } else {
        this.receivers.delete(id);
        gone = true;
      }
    }
    this.nextExpiryMs = nextExpiry;
    if (gone) {
      this.updateConfirmed();
      this.updateLimit();
    }
    return connected;
  }

  /** Records a receiver's SM; its expiry can only bring the next timeout check forward. */
  private setReceiver(id: bigint, at: number, position: number, window: number): void {
    this.receivers.set(id, { at, position, window });
    this.nextExpiryMs = Math.min(this.nextExpiryMs, at + this.connectionTimeoutMs);
  }

  /**
   * Flow control by the slowest live receiver (Aeron's min flow control): the sender never runs more
   * than one receiver window past any of them, so what the slowest has not consumed stays in the log
   * (for its NAKs and its rejoin). With one receiver this is Aeron's unicast flow control.
   */
  private updateLimit(): void {
    let lowest = Number.POSITIVE_INFINITY;
    for (const r of this.receivers.values()) lowest = Math.min(lowest, r.position + r.window);
    if (lowest !== Number.POSITIVE_INFINITY) this.senderLimit = lowest;
  }

  /** Receivers whose status messages arrived within the connection timeout. */
  liveReceivers(nowMs: number): number {
    this.isConnected(nowMs);
    return this.receivers.size;
  }

  private updateConfirmed(): void {
    let lowest = Number.POSITIVE_INFINITY;
    for (const r of this.receivers.values()) lowest = Math.min(lowest, r.position);
    if (lowest !== Number.POSITIVE_INFINITY && lowest > this.confirmedPosition) this.confirmedPosition = lowest;
  }

  /**
   * Appends one message to the log (it is sent by doWork). Returns the new producer position, or
   * OfferResult.NotConnected / BackPressured / Closed. Throws for a message over maxMessageLength.
   */
  offer(buf: Buffer, nowMs: number, start = 0, length = buf.length - start): number {
    if (length > this.log.maxMessageLength) {
      throw new AeronPublicationError('AERON_MESSAGE_TOO_LONG', `message of ${length} bytes exceeds the maximum of ${this.log.maxMessageLength}`);
    }
    if (this.stateValue !== 'active') return OfferResult.Closed;
    if (!this.isConnected(nowMs)) return OfferResult.NotConnected;
    if (this.log.tail + this.log.growthFor(length) > this.senderPosition + this.producerWindow) return OfferResult.BackPressured;
    this.lastOfferMs = nowMs;
    return this.log.append(buf, start, length);
  }

  /**
   * Appends `messages[from]`, `messages[from + 1]`, … while the producer window has room: one state
   * and connection check for the run instead of one per message (the emitter's hot path). Returns
   * how many were appended (the new producer position is `producerPosition`), or, when none was,
   * OfferResult.NotConnected / BackPressured / Closed (0 when `from` is past the end). A message over
   * maxMessageLength stops the run before it; it throws only when it is the first.
   */
  offerBatch(messages: readonly Buffer[], from: number, nowMs: number): number {
    if (from >= messages.length) return 0;
    if (this.stateValue !== 'active') return OfferResult.Closed;
    if (!this.isConnected(nowMs)) return OfferResult.NotConnected;
    const log = this.log;
    const limit = this.senderPosition + this.producerWindow;
    const max = log.maxMessageLength;
    let i = from;
    for (; i < messages.length; i++) {
      const m = messages[i] as Buffer;
      if (m.length > max) {
        if (i === from) throw new AeronPublicationError('AERON_MESSAGE_TOO_LONG', `message of ${m.length} bytes exceeds the maximum of ${max}`);
        break;
      }
      if (log.tail + log.growthFor(m.length) > limit) break;
      log.append(m, 0, m.length);
    }
    if (i === from) return OfferResult.BackPressured;
    this.lastOfferMs = nowMs;
    return i - from;
  }

  /**
   * Asks for a status message showing consumption at or past `position` (a producer position that
   * offer() returned). A receiver reports a new consumption position only after a quarter window of
   * progress past its last report (the C image's SM threshold), so the last few KiB of a stream that
   * then goes quiet would never be reported. Once the publication is idle (everything sent, no offer
   * for padIdleMs) and the unreported tail is shorter than that threshold, doWork appends one PAD
   * frame long enough to cross it: subscribers skip padding, their position moves past it, and the
   * receiver's next SM reports a position beyond `position`. Costs one 32-byte datagram per quiet
   * spell, and term space the receiver never stores.
   */
  requestConsumptionReport(position: number): void {
    if (position > this.reportTarget) this.reportTarget = position;
  }

  private padForReport(nowMs: number): void {
    if (this.stateValue !== 'active' || this.reportTarget <= this.confirmedPosition) return;
    if (this.senderPosition < this.log.tail || nowMs - this.lastOfferMs < this.padIdleMs || !this.isConnected(nowMs)) return;
    const threshold = Math.floor(this.receiverWindow / 4);
    const needed = this.confirmedPosition + threshold + DATA_HEADER_LENGTH - this.log.tail;
    if (needed <= 0 || this.log.tail + needed > this.senderPosition + this.producerWindow) return;
    this.log.appendPadding(needed);
    this.counters.pads++;
  }

  /** Handles one datagram from a receiver. Frames for other sessions/streams are ignored. */
  onControl(datagram: Buffer, nowMs: number): void {
    if (datagram.length < 8) return;
    const type = datagram.readInt16LE(HeaderField.type);
    try {
      if (type === FrameType.Sm && datagram.length >= SM_LENGTH) this.onStatusMessage(decodeStatusMessage(datagram), nowMs);
      else if (type === FrameType.Nak && datagram.length >= NAK_LENGTH) this.onNak(decodeNak(datagram), nowMs);
      else if (type === FrameType.Err) this.onErr(decodeErr(datagram));
      else if (type === FrameType.Rttm && datagram.length >= RTTM_LENGTH) this.onRttm(decodeRttm(datagram));
    } catch {
      // Malformed control frames are dropped, as the C sender drops short ones.
    }
  }

  /**
   * A normal SM: liveness + "max" flow control. An S-flag SM asks for a SETUP. Beyond the C driver:
   * an S-flag SM means that receiver has no image of this session (it restarted, or its image timed
   * out), so whatever it had not consumed is lost to it. We rewind the sender position to the start of
   * the message holding the last consumption position (still retained in the log) and send the SETUP
   * there, so the new image joins where the old one stopped and nothing offered is lost (at least once).
   */
  private onStatusMessage(sm: ReturnType<typeof decodeStatusMessage>, nowMs: number): void {
    // A receiver of a dynamic multi-destination channel asks every publication for a SETUP with
    // session 0 (aeron_send_channel_endpoint_on_status_message).
    const announce = sm.sessionId === 0 && (sm.streamId === 0 || sm.streamId === this.streamId) && (sm.flags & SmFlag.SendSetup) !== 0;
    if (!announce && (sm.sessionId !== this.sessionId || sm.streamId !== this.streamId)) return;
    if ((sm.flags & SmFlag.SendSetup) !== 0) {
      if (this.isEndOfStream) return;
      this.isSetupElicited = true;
      this.lastSetupMs = Number.NEGATIVE_INFINITY;
      // Back to what every live receiver has consumed (with one receiver, what it reported last).
      const rejoin = this.log.messageStart(this.confirmedPosition);
      if (rejoin < this.senderPosition) {
        this.counters.rewoundBytes += this.senderPosition - rejoin;
        this.senderPosition = rejoin;
        this.counters.rewinds++;
      }
      this.senderLimit = this.senderPosition;
      this.retransmit = undefined;
      return;
    }
    const position = Math.min(computePosition(sm.consumptionTermId, sm.consumptionTermOffset, this.termLength, this.initialTermId), this.senderPosition);
    if ((sm.flags & SmFlag.Eos) !== 0) {
      // A receiver answering our end of stream has consumed up to its position; then it leaves.
      if (position >= 0) this.setReceiver(sm.receiverId, nowMs, position, sm.receiverWindow);
      this.updateConfirmed();
      this.receivers.delete(sm.receiverId);
      this.updateLimit();
      // Only an EOS SM answering our own end of stream ends the linger; one from a receiver that
      // left earlier must not cut short the wait for the current one.
      if (this.isEndOfStream) this.receivedEosSm = true;
    } else if (position >= 0) {
      // The receiver that replaced a gone one on a unicast endpoint: the old one's last report would
      // hold flow control and confirmations back until its connection timeout (5 s of stall after
      // every receiver restart, longer than the emitter's back-pressure budget).
      if (this.singleReceiver && !this.receivers.has(sm.receiverId)) this.receivers.clear();
      this.setReceiver(sm.receiverId, nowMs, Math.max(position, this.receivers.get(sm.receiverId)?.position ?? 0), sm.receiverWindow);
      this.updateConfirmed();
      this.updateLimit();
    }
    this.hasInitialConnection = true;
    this.isSetupElicited = false;
    if (position < 0) return;
    this.consumedPosition = Math.max(this.consumedPosition, position);
    this.receiverWindow = sm.receiverWindow;
  }

  private onErr(err: ReturnType<typeof decodeErr>): void {
    if (err.sessionId !== this.sessionId || err.streamId !== this.streamId) return;
    this.receivers.delete(err.receiverId);
  }

  private onRttm(rttm: ReturnType<typeof decodeRttm>): void {
    if (rttm.sessionId !== this.sessionId || rttm.streamId !== this.streamId || (rttm.flags & RttmFlag.Reply) === 0) return;
    this.send(encodeRttm({ flags: 0, sessionId: this.sessionId, streamId: this.streamId, echoTimestampNs: rttm.echoTimestampNs, receptionDeltaNs: 0n, receiverId: rttm.receiverId }));
  }

  private onNak(nak: ReturnType<typeof decodeNak>, nowMs: number): void {
    if (nak.sessionId !== this.sessionId || nak.streamId !== this.streamId) return;
    if (nak.termOffset < 0 || nak.termOffset > this.termLength - DATA_HEADER_LENGTH || nak.length <= 0) {
      this.counters.naksIgnored++;
      return;
    }
    const active = this.retransmit;
    if (active !== undefined && nowMs < active.untilMs && active.termId === nak.termId && nak.termOffset >= active.termOffset && nak.termOffset < active.termOffset + active.length) {
      this.counters.naksIgnored++;
      return;
    }
    const estimate = receiverWindowFor(this.termLength, DEFAULT_RECEIVER_WINDOW);
    const length = Math.min(nak.length, estimate * 16, this.termLength - nak.termOffset);
    const position = computePosition(nak.termId, nak.termOffset, this.termLength, this.initialTermId);
    const lowest = this.senderPosition - this.termLength / 2 - this.log.maxMessageLength;
    if (position < lowest || position >= this.senderPosition || position < 0) {
      this.counters.naksIgnored++;
      return;
    }
    this.retransmit = { termId: nak.termId, termOffset: nak.termOffset, length, untilMs: nowMs + this.retransmitLingerMs };
    const end = Math.min(position + length, this.senderPosition);
    let at = this.log.frameStart(position);
    while (at < end) {
      // Whole frames from the NAKed offset; the last datagram may reach past `end` (never past senderPosition).
      const { wireLength, advance } = this.log.scan(at, this.senderPosition, this.mtu);
      if (wireLength === 0) break;
      const offset = at % this.termLength;
      this.send(this.log.termFor(at).subarray(offset, offset + wireLength));
      this.counters.retransmits++;
      at += advance;
    }
  }

  /**
   * Starts the end of stream: drain what was offered, then EOS heartbeats until an EOS SM or linger.
   * As aeron_network_publication_on_time_event: draining lasts as long as a receiver is connected (a
   * slow receiver must not lose the tail of the stream), and the linger starts once draining ends.
   */
  close(_nowMs: number): void {
    if (this.stateValue !== 'active') return;
    this.stateValue = 'draining';
  }

  /**
   * One duty cycle: SETUP, DATA up to the limit (at most `maxDatagrams`; the C sender sends 2 per
   * cycle), heartbeat, liveness, close progress. Returns datagrams sent.
   */
  doWork(nowMs: number, maxDatagrams = Number.POSITIVE_INFINITY): number {
    if (this.stateValue === 'closed') return 0;
    let sent = 0;
    if ((!this.hasInitialConnection || this.isSetupElicited) && nowMs - this.lastSetupMs >= this.setupIntervalMs) {
      this.sendSetup(nowMs);
      sent++;
    }
    this.padForReport(nowMs);
    let dataSent = 0;
    const limit = Math.min(this.senderLimit, this.log.tail);
    while (this.senderPosition < limit && dataSent < maxDatagrams) {
      const { wireLength, advance } = this.log.scan(this.senderPosition, limit, this.mtu);
      if (wireLength === 0) break;
      const offset = this.senderPosition % this.termLength;
      this.send(this.log.termFor(this.senderPosition).subarray(offset, offset + wireLength));
      this.senderPosition += advance;
      this.counters.datagramsSent++;
      dataSent++;
    }
    sent += dataSent;
    if (dataSent > 0) this.lastDataOrHeartbeatMs = nowMs;
    if (this.stateValue === 'draining') {
      if (this.senderPosition >= this.log.tail) {
        this.isEndOfStream = true;
        this.stateValue = 'lingering';
        this.lingerDeadlineMs = nowMs + this.lingerMs;
        this.lastDataOrHeartbeatMs = Number.NEGATIVE_INFINITY;
      } else if (!this.isConnected(nowMs)) {
        // Nobody left to drain to: linger without EOS (what is unsent cannot be delivered), as C does.
        this.stateValue = 'lingering';
        this.lingerDeadlineMs = nowMs + this.lingerMs;
      }
    }
    if (dataSent === 0 && this.hasInitialConnection && nowMs - this.lastDataOrHeartbeatMs >= this.heartbeatIntervalMs) {
      this.sendHeartbeat(nowMs);
      sent++;
    }
    this.isConnected(nowMs);
    if (this.stateValue === 'lingering' && this.receivedEosSm) this.stateValue = 'closed';
    if (this.stateValue === 'lingering' && nowMs >= this.lingerDeadlineMs) this.stateValue = 'closed';
    return sent;
  }

  /** Milliseconds until doWork has timed work (SETUP, heartbeat, linger end). */
  nextDeadlineMs(nowMs: number): number {
    let next = this.lastDataOrHeartbeatMs + this.heartbeatIntervalMs;
    if (!this.hasInitialConnection || this.isSetupElicited) next = Math.min(next, this.lastSetupMs + this.setupIntervalMs);
    next = Math.min(next, this.lingerDeadlineMs);
    if (this.reportTarget > this.confirmedPosition) next = Math.min(next, this.lastOfferMs + this.padIdleMs);
    return Math.max(0, next - nowMs);
  }

  private sendSetup(nowMs: number): void {
    this.send(
      encodeSetup({
        flags: 0,
        termOffset: this.senderPosition % this.termLength,
        sessionId: this.sessionId,
        streamId: this.streamId,
        initialTermId: this.initialTermId,
        activeTermId: this.log.termIdFor(this.senderPosition),
        termLength: this.termLength,
        mtu: this.mtu,
        ttl: 0,
      }),
    );
    this.lastSetupMs = nowMs;
    this.counters.setupsSent++;
  }

  private sendHeartbeat(nowMs: number): void {
    this.send(
      encodeHeartbeat({
        sessionId: this.sessionId,
        streamId: this.streamId,
        termId: this.log.termIdFor(this.senderPosition),
        termOffset: this.senderPosition % this.termLength,
        eos: this.isEndOfStream,
      }),
    );
    this.lastDataOrHeartbeatMs = nowMs;
    this.counters.heartbeatsSent++;
  }
}

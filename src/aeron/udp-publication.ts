import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { lookup as dnsLookupCallback } from 'node:dns';
import type { LookupOneOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { isIP, isIPv6 } from 'node:net';
import { randomInt32, randomSessionId, systemAeronClock } from './aeron-clock.js';
import type { AeronClock, AeronRandom, AeronTimerHandle } from './aeron-clock.js';
import { parseUdpChannel } from './channel-uri.js';
import { DestinationTracker } from './destination-tracker.js';
import type { Destination } from './destination-tracker.js';
import { FrameType, HeaderField, SM_LENGTH, SmField } from './frame-codec.js';
import type { UdpChannel } from './channel-uri.js';
import { Publication } from './publication.js';
import { SoleReceiverLink } from './sole-receiver-link.js';
import { DEFAULT_MTU, DEFAULT_TERM_LENGTH } from './term-math.js';

export interface UdpPublicationOptions {
  readonly channel: string | UdpChannel;
  readonly streamId: number;
  readonly clock?: AeronClock;
  readonly random?: AeronRandom;
  /** Overrides the channel's term-length (default 16 MiB, as the C driver). */
  readonly termLength?: number;
  /** Overrides the channel's mtu (default 1408). */
  readonly mtu?: number;
  readonly connectionTimeoutMs?: number;
  readonly lingerMs?: number;
  /** Period of the duty-cycle timer (SETUP, heartbeats, liveness). */
  readonly dutyCycleMs?: number;
  readonly socketBufferBytes?: number;
  /**
   * Unicast to one receiver: connect the socket to it while it answers from the address data goes to
   * (default true; fewer checks per datagram in node and the kernel). False keeps it unconnected.
   */
  readonly connectSocket?: boolean;
  /** Resolves a destination's host name to an address (DNS by default); injectable for tests. */
  readonly lookup?: (host: string, family: 4 | 6) => Promise<string>;
}

const dnsLookup = async (host: string, family: 4 | 6): Promise<string> => (await lookup(host, { family })).address;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * The socket's own lookup. An unconnected dgram socket passes every send's address through it, and
 * the default (dns.lookup) answers even an IP literal on the next tick: a closure, a nextTick and a
 * deferred send per datagram. Every send here goes to an address the DestinationTracker resolved
 * already, so an IP literal is answered at once; anything else still goes to DNS.
 */
function literalLookup(address: string, options: LookupOneOptions, callback: LookupCallback): void {
  const kind = isIP(address);
  if (kind !== 0) callback(null, address, kind);
  else dnsLookupCallback(address, options, callback);
}

interface Waiter {
  readonly resolve: (progressed: boolean) => void;
  readonly timer: AeronTimerHandle;
  readonly signal?: AbortSignal;
  readonly onAbort: () => void;
  readonly kind: 'connected' | 'progress' | 'closed' | 'consumed' | 'sent';
  /** For 'consumed': the position a receiver must report; for 'sent': the sender position to reach. */
  readonly position?: number;
}

/**
 * A Publication on a real UDP socket: one socket bound to an ephemeral port sends everything, so
 * SETUP/DATA and the receiver's SM/NAK share one address (§0.1, pitfall 4). The duty cycle
 * runs on a timer for the publication's whole life, and right after offers and control frames.
 */
export class UdpPublication {
  readonly publication: Publication;
  readonly channel: UdpChannel;
  private readonly clock: AeronClock;
  private timer: AeronTimerHandle | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private waiters: Waiter[] = [];
  private lastSenderPosition = 0;
  /** The clock as read by the current run of offers, or -Infinity (see offer). */
  private offerTime = Number.NEGATIVE_INFINITY;
  private closing: Promise<void> | undefined;
  private socketClosed = false;
  /** Destinations whose name resolved to a new address after their receiver fell silent. */
  reResolutions = 0;

  private constructor(
    private readonly socket: Socket,
    channel: UdpChannel,
    publication: Publication,
    clock: AeronClock,
    private readonly dutyCycleMs: number,
    private readonly errors: { count: number },
    readonly destinations: DestinationTracker,
    private readonly resolve: (host: string, family: 4 | 6) => Promise<string>,
    /** The socket's connection to a sole unicast receiver (tests read `connected` and `connects`). */
    readonly link: SoleReceiverLink,
  ) {
    this.channel = channel;
    this.publication = publication;
    this.clock = clock;
  }

  static async open(o: UdpPublicationOptions): Promise<UdpPublication> {
    const channel = typeof o.channel === 'string' ? parseUdpChannel(o.channel) : o.channel;
    const clock = o.clock ?? systemAeronClock;
    const random = o.random ?? Math.random;
    const multicast = channel.multicast;
    const socket = createSocket({ type: isIPv6(channel.host) ? 'udp6' : 'udp4', reuseAddr: multicast !== undefined, lookup: literalLookup });
    // Send failures (e.g. ICMP port unreachable while no receiver listens) are counted, never thrown:
    // the protocol recovers through SETUP, NAKs and heartbeats.
    const errors = { count: 0 };
    socket.on('error', () => {
      errors.count++;
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      // Unicast: interface= names the local address (and port) to send from; any address otherwise.
      // Multicast, as the C sender: bound to the channel's port on every address, a member of the
      // control group, where receivers send their SMs and NAKs.
      const bindPort = multicast === undefined ? (channel.localPort ?? 0) : channel.port;
      const bindHost = multicast === undefined ? channel.localHost : undefined;
      socket.bind(bindPort, bindHost, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // Not connect()ed at first: the receiver's SM/NAK must be accepted whatever source address its
    // host replies from (a wildcard-bound receiver on a multi-homed host), as the C sender does; the
    // SoleReceiverLink connects only to a receiver that answers from where data goes. Each
    // destination's name is resolved here, and again when its receiver falls silent (see
    // DestinationTracker), so each send goes to an IP literal without a lookup per datagram.
    const resolve = o.lookup ?? dnsLookup;
    const family = isIPv6(channel.host) ? 6 : 4;
    const mdc = channel.mdc;
    const destinations = new DestinationTracker(
      mdc === undefined ? 'single' : mdc.mode,
      o.connectionTimeoutMs ?? 5000,
      mdc === undefined ? [{ host: channel.host, port: channel.port }] : mdc.destinations,
      clock.now(),
    );
    try {
      for (const d of destinations.dueForResolution(clock.now())) destinations.resolved(d, await resolve(d.host, family));
    } catch (err) {
      socket.close();
      throw err;
    }
    if (multicast !== undefined) {
      socket.addMembership(multicast.controlGroup, channel.localHost);
      if (channel.localHost !== undefined) socket.setMulticastInterface(channel.localHost);
      // Aeron leaves the system's TTL (1) unless ttl= asks for more.
      if (multicast.ttl !== undefined && multicast.ttl > 0) socket.setMulticastTTL(multicast.ttl);
      socket.setMulticastLoopback(true);
    }
    const bufferBytes = o.socketBufferBytes ?? 2 * 1024 * 1024;
    try {
      socket.setSendBufferSize(channel.socketSendBuffer ?? bufferBytes);
      socket.setRecvBufferSize(channel.socketReceiveBuffer ?? Math.min(bufferBytes, 1024 * 1024));
    } catch {
      // The kernel caps buffer sizes (net.core.wmem_max); the defaults still work, more slowly.
    }
    // Unicast to one receiver: the socket connects to it once it answers (see SoleReceiverLink).
    const link = new SoleReceiverLink(socket, multicast === undefined && mdc === undefined && o.connectSocket !== false);
    const publication = new Publication({
      sessionId: channel.sessionId ?? randomSessionId(random),
      streamId: o.streamId,
      initialTermId: channel.initialTermId ?? randomInt32(random),
      termLength: o.termLength ?? channel.termLength ?? DEFAULT_TERM_LENGTH,
      mtu: o.mtu ?? channel.mtu ?? DEFAULT_MTU,
      send: (d) => link.send(d, destinations.targets),
      singleReceiver: multicast === undefined && mdc === undefined,
      ...(o.connectionTimeoutMs === undefined ? {} : { connectionTimeoutMs: o.connectionTimeoutMs }),
      ...((o.lingerMs ?? channel.lingerMs) === undefined ? {} : { lingerMs: o.lingerMs ?? channel.lingerMs }),
    });
    const p = new UdpPublication(socket, channel, publication, clock, o.dutyCycleMs ?? 10, errors, destinations, resolve, link);
    socket.on('message', (msg, from) => {
      const now = p.clock.now();
      if (msg.length >= SM_LENGTH && msg.readInt16LE(HeaderField.type) === FrameType.Sm) {
        destinations.onStatusMessage(msg.readBigInt64LE(SmField.receiverId), from.address, from.port, now);
        link.onStatusMessage(from.address, from.port, destinations.targets);
      }
      p.publication.onControl(msg, now);
      p.work();
    });
    p.work();
    return p;
  }

  /** Socket errors seen (sends refused while no receiver listens, and the like). */
  get sendErrors(): number {
    return this.errors.count;
  }

  get localPort(): number {
    return this.socket.address().port;
  }

  get sessionId(): number {
    return this.publication.sessionId;
  }

  get maxMessageLength(): number {
    return this.publication.maxMessageLength;
  }

  isConnected(): boolean {
    return this.publication.isConnected(this.clock.now());
  }

  /**
   * See Publication.offer; the data goes out on the next duty cycle (this tick, coalesced). A run of
   * successful offers reads the clock once: the time of the run's first offer stands for the rest
   * until the duty cycle the first one scheduled (at the end of this turn of the event loop) or a
   * refused offer, which read it afresh. The time only decides liveness (5 s) and the pad's idle
   * wait (20 ms), and a clock read costs about as much as appending a short message.
   */
  offer(buf: Buffer, start = 0, length = buf.length - start): number {
    let now = this.offerTime;
    if (now === Number.NEGATIVE_INFINITY) now = this.offerTime = this.clock.now();
    const r = this.publication.offer(buf, now, start, length);
    if (r <= 0) this.offerTime = Number.NEGATIVE_INFINITY;
    else if (this.immediate === undefined) this.immediate = setImmediate(() => this.work());
    return r;
  }

  /** See Publication.offerBatch: a run of messages in one call; sent on the next duty cycle. */
  offerBatch(messages: readonly Buffer[], from: number): number {
    const r = this.publication.offerBatch(messages, from, this.clock.now());
    if (r > 0 && this.immediate === undefined) this.immediate = setImmediate(() => this.work());
    return r;
  }

  /** Resolves true once connected, false after `timeoutMs` (or on abort). */
  waitForConnected(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.isConnected()) return Promise.resolve(true);
    return this.wait('connected', timeoutMs, signal);
  }

  /** Resolves true when the sender position moves (room for offers), false after `timeoutMs`. */
  waitForProgress(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.wait('progress', timeoutMs, signal);
  }

  /** The consumption every live receiver has reported in its status messages. */
  get confirmedPosition(): number {
    return this.publication.confirmedPosition;
  }

  /**
   * Resolves true once every live receiver's status messages show consumption at or past `position`
   * (a value offer() returned): their subscribers have read everything up to there. False when the publication
   * closes first, or on abort. No timeout: a receiver that is away is waited for (it rejoins at its
   * last consumption position).
   */
  waitForConsumed(position: number, signal?: AbortSignal): Promise<boolean> {
    if (this.publication.confirmedPosition >= position) return Promise.resolve(true);
    if (this.socketClosed) return Promise.resolve(false);
    this.publication.requestConsumptionReport(position);
    return this.wait('consumed', 2_147_483_647, signal, position);
  }

  /**
   * Resolves true once the sender position reaches `position` (a value offer() returned): every
   * byte up to there left the socket at least once; nothing says a receiver has it. False when the
   * publication closes first, or on abort.
   */
  waitForSent(position: number, signal?: AbortSignal): Promise<boolean> {
    if (this.publication.senderPosition >= position) return Promise.resolve(true);
    if (this.socketClosed) return Promise.resolve(false);
    return this.wait('sent', 2_147_483_647, signal, position);
  }

  private wait(kind: Waiter['kind'], timeoutMs: number, signal?: AbortSignal, position?: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal?.aborted) {
        resolve(false);
        return;
      }
      const finish = (value: boolean): void => {
        this.clock.clearTimeout(waiter.timer);
        signal?.removeEventListener('abort', waiter.onAbort);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(value);
      };
      const waiter: Waiter = {
        kind,
        resolve: finish,
        timer: this.clock.setTimeout(() => finish(false), timeoutMs),
        onAbort: () => finish(false),
        ...(signal === undefined ? {} : { signal }),
        ...(position === undefined ? {} : { position }),
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** One duty cycle, then re-arm the timer. */
  private work(): void {
    this.offerTime = Number.NEGATIVE_INFINITY;
    if (this.immediate !== undefined) {
      clearImmediate(this.immediate);
      this.immediate = undefined;
    }
    if (this.socketClosed) return;
    const now = this.clock.now();
    this.destinations.expire(now);
    for (const d of this.destinations.dueForResolution(now)) this.reResolve(d);
    const targets = this.destinations.targets;
    if (this.link.connected) this.link.check(targets.length === 1 && !this.destinations.silent(targets[0] as Destination, now), targets);
    this.publication.doWork(now);
    const moved = this.publication.senderPosition !== this.lastSenderPosition;
    this.lastSenderPosition = this.publication.senderPosition;
    if (this.waiters.length > 0) {
      const connected = this.publication.isConnected(now);
      const closed = this.publication.state === 'closed';
      const consumed = this.publication.confirmedPosition;
      const sent = this.publication.senderPosition;
      for (const w of [...this.waiters]) {
        if (
          (w.kind === 'connected' && connected) ||
          (w.kind === 'progress' && (moved || closed)) ||
          (w.kind === 'closed' && closed) ||
          (w.kind === 'consumed' && consumed >= (w.position ?? 0)) ||
          (w.kind === 'sent' && sent >= (w.position ?? 0))
        ) {
          w.resolve(true);
        }
      }
    }
    if (this.publication.state === 'closed') {
      this.closeSocket();
      return;
    }
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.work();
    }, this.dutyCycleMs);
    this.timer.unref();
  }

  /** Resolves a silent destination's name again; a failure keeps the old address (counted). */
  private reResolve(d: Destination): void {
    this.resolve(d.host, isIPv6(this.channel.host) ? 6 : 4).then(
      (address) => {
        if (address !== d.address) this.reResolutions++;
        this.destinations.resolved(d, address);
      },
      () => {
        this.errors.count++;
      },
    );
  }

  private closeSocket(): void {
    if (this.socketClosed) return;
    this.socketClosed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of [...this.waiters]) w.resolve(false);
    this.socket.close();
  }

  /**
   * End of stream: send what was offered, EOS heartbeats until the receiver's EOS SM (which the
   * receiver sends once it has rebuilt everything up to the EOS position) or the linger time, then
   * close the socket. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.publication.close(this.clock.now());
    this.closing = new Promise<void>((resolve) => {
      if (this.socketClosed) {
        resolve();
        return;
      }
      void this.wait('closed', 2_147_483_647).then(() => {
        this.closeSocket();
        resolve();
      });
      this.work();
    });
    return this.closing;
  }

  /** Closes at once without end of stream (tests of abrupt loss). */
  abort(): void {
    this.closeSocket();
  }
}

import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { BackoffPolicy } from '../retry/backoff.js';
import { Backoff } from '../retry/retry.js';
import { ErrorCode, McError } from '../errors.js';
import type { Clock, Random, TimerHandle } from '../util/clock.js';
import { fitEntryBatch } from '../wire/entry-batch-fit.js';
import { AckCode } from '../wire/grpc-api.js';
import type { AckMessage } from '../wire/grpc-api.js';
import { makeIngestClient, probeAggregator, shipCredentials } from './aggregator-channel.js';
import type { ChannelOptions, IngestClient, ShipCall, ShipTls } from './aggregator-channel.js';
import { AggregatorPool } from './aggregator-pool.js';
import type { MoveReason } from '../telemetry/collector-metrics.js';
import type { AggregatorTarget } from './aggregator-pool.js';
import { AggregatorResolver, systemResolver } from './aggregator-resolver.js';
import type { HostResolver } from './aggregator-resolver.js';
import { CONSERVATIVE_LIMITS, readLimits } from '../wire/ingest-limits.js';
import type { IngestLimits } from '../wire/ingest-limits.js';
import { chunkMemory } from './chunk-builder.js';
import type { SealedChunk } from './chunk-builder.js';

/**
 * The shipping side (past 400 lines: the stream protocol, the re-cutting to limits and the choice of
 * aggregator share the queue and the in-flight map; address ranking and resolution live in
 * aggregator-pool.ts and aggregator-resolver.ts). One bidirectional Ingest.Ship stream at a time, to
 * one of the aggregators of COLLECTOR_REMOTE_ADDRESS (aggregator-pool.ts says which). Every sealed
 * chunk stays queued until an aggregator acknowledges it; a broken stream is replaced at once by a
 * stream to the next aggregator that is not cooling down (an address that failed cools down for an
 * exponential backoff with full jitter of its consecutive failures), and every chunk not
 * acknowledged on it is sent again, in order, on the next one. What was acknowledged is durable in
 * that aggregator's spool and is emitted by it (when it comes back, after a crash).
 * What an Ack code means is decided here once:
 *  - OK: durable at the aggregator, the chunk is done;
 *  - RESOURCE_EXHAUSTED: the spool is full: hold sending for retry_after_ms, then resend (never drop),
 *    one chunk at a time until one is accepted again (chunks already in flight behind the refused
 *    one may still be accepted before it: the one way a file's lines can arrive out of order);
 *  - UNAVAILABLE: the aggregator is going away (SIGTERM: it acknowledged every chunk it took before
 *    this answer, acks go out in stream order) or cannot store: go to another one and resend;
 *  - INVALID_ARGUMENT: it will never be accepted: dropped, counted and logged as an error.
 * A stream the aggregator ends (its shutdown, after acknowledging what it took) also sends the
 * collector elsewhere at once. Moves the collector decides itself (its preferred aggregator is
 * reachable again, or its address left the DNS answer) half-close the stream and wait for the acks of
 * what is in flight before the next stream starts, so they send nothing twice.
 *
 * Limits: the aggregator advertises its chunk limits in the response headers of each stream. Nothing
 * is sent on a new stream before they arrive (or, from an aggregator too old to send them, before
 * `limitsWaitMs` passes; then CONSERVATIVE_LIMITS apply). A queued chunk that does not fit the limits
 * (sealed before they were known, or under a previous aggregator's) is re-cut into parts that do
 * (long lines into flagged pieces) and counts as acknowledged once every part is.
 */
export interface ShipClientOptions {
  /** COLLECTOR_REMOTE_ADDRESS: "host:port" items, addresses or DNS names. */
  readonly addresses: readonly string[];
  /** Spreads a fleet over the aggregators (the collector id). */
  readonly key: string;
  /** undefined: plaintext. */
  readonly tls: ShipTls | undefined;
  /** How names are resolved (default: the system resolver). */
  readonly resolve?: HostResolver;
  /** Names are resolved again this often (and soon after a failure); the preferred aggregator is tried again then. */
  readonly resolveIntervalMs?: number;
  readonly retry: BackoffPolicy & { readonly maxTimes?: number | undefined };
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  onAcked(chunk: SealedChunk): void;
  onRejected(chunk: SealedChunk, message: string): void;
  /** Connection attempts exhausted (COLLECTOR_RETRY_MAX_TIMES). */
  onFatal(err: McError): void;
  onSent?(chunk: SealedChunk): void;
  /** A stream is replaced, and why. */
  onReconnect?(reason: MoveReason): void;
  /** The next stream goes to another aggregator than the last one. */
  onFailover?(reason: MoveReason, from: string, to: string): void;
  onConnected?(connected: boolean): void;
  /** The limits in force changed: advertised by the aggregator (`advertised`) or the conservative fallback. */
  onLimits?(limits: IngestLimits, advertised: boolean): void;
  /** A chunk was re-cut into `parts` to fit the limits. */
  onRefit?(chunk: SealedChunk, parts: number): void;
  /** How long a new stream waits for the limits before assuming an older aggregator (default 2 s). */
  readonly limitsWaitMs?: number;
}

/** What goes out as one gRPC Chunk: a whole sealed chunk, or a part of one re-cut to fit the limits. */
interface Part {
  readonly payload: Buffer;
  /** The buffer `payload` is a view of, with room for the Chunk's fields (sent without a copy). */
  readonly backing?: Buffer | undefined;
  readonly entryCount: number;
  readonly longestLine: number;
  /** Holds LineBlocks (only an aggregator that advertises them reads them). */
  readonly lineBlocks: boolean;
  state: 'unsent' | 'sent' | 'done';
}

interface Queued {
  /** Released once done, so acknowledged payloads never wait in the queue for compaction. */
  chunk: SealedChunk;
  readonly index: number;
  state: 'unsent' | 'sent' | 'done';
  /** Made when first sent; more than one when the chunk was re-cut. */
  parts: Part[] | undefined;
  /** A part was refused INVALID_ARGUMENT. */
  rejected: string | undefined;
}

const RELEASED: SealedChunk = Object.freeze({ id: 0, payload: Buffer.alloc(0), entryCount: 0, ranges: [] });

/** Floor for a RESOURCE_EXHAUSTED hold when the aggregator gives no retry_after_ms. */
const MIN_HOLD_MS = 100;

const DEFAULT_LIMITS_WAIT_MS = 2000;
const DEFAULT_RESOLVE_INTERVAL_MS = 30_000;
/** How long a move the collector decided waits for the acks in flight before it cuts the stream. */
const MOVE_GRACE_MS = 5000;
/** How long the preferred aggregator may take to accept a connection before a move to it is dropped. */
const PROBE_TIMEOUT_MS = 2000;

function fitsSizes(part: Part, limits: IngestLimits): boolean {
  return part.payload.length <= limits.maxChunkBytes && part.entryCount <= limits.maxEntriesPerChunk && part.longestLine <= limits.maxLineBytes;
}

function fits(part: Part, limits: IngestLimits): boolean {
  // An aggregator older than LineBlocks would store them and skip their lines: re-cut into Lines.
  return fitsSizes(part, limits) && (!part.lineBlocks || limits.lineBlocks === true);
}

export class ShipClient {
  private readonly pool: AggregatorPool;
  /** Waits between tries while no address of COLLECTOR_REMOTE_ADDRESS resolves. */
  private readonly unresolved: Backoff;
  private readonly resolver: AggregatorResolver;
  private readonly channelOptions: ChannelOptions;
  /** The client of the aggregator of the current (or last) stream. */
  private channel: { readonly target: AggregatorTarget; readonly client: IngestClient } | undefined;
  /** The address of the last stream and why it ended, for the failover count. */
  private lastDown: { readonly address: string; readonly reason: MoveReason } | undefined;
  /**
   * Chosen when the last stream went down: the next stream goes there even when the timer fires late
   * (a busy event loop) and the failed address has cooled down meanwhile.
   */
  private nextTarget: AggregatorTarget | undefined;
  /** Set while the current stream is half-closed to move elsewhere (no more chunks go on it). */
  private moving: MoveReason | undefined;
  private moveTimer: TimerHandle | undefined;
  private probeInFlight = false;
  /** The current stream's response headers (the aggregator's limits) arrived. */
  private streamOpen = false;
  private started = false;
  private queue: Queued[] = [];
  /** Absolute index of queue[0]. */
  private base = 0;
  private nextIndex = 0;
  /** Absolute index from which to look for unsent chunks. */
  private sendFrom = 0;
  private call: ShipCall | undefined;
  private inflight = new Map<number, { q: Queued; part: Part }>();
  private sequence = 0;
  private writeBlocked = false;
  private holdUntil = 0;
  /** The spool was full: one chunk in flight at a time until one is accepted. */
  private probing = false;
  private holdTimer: TimerHandle | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private attempt = 0;
  private closed = false;
  /** The limits in force: advertised by the aggregator of the current (or last) stream. */
  limits: IngestLimits = CONSERVATIVE_LIMITS;
  /** The last limits said the aggregator reads LineBlocks (logged when that changes to false). */
  private readsBlocks = true;
  /** Sending on the current stream waits for its limits until this time (0: known). */
  private limitsDeadline = 0;
  private limitsTimer: TimerHandle | undefined;
  private idleWaiters: Array<() => void> = [];
  /**
   * Memory of the chunks not acknowledged yet (`chunkMemory`). grpc-js frames a chunk in its own
   * buffer (grpc-frame-in-place.ts), so what HTTP/2 is writing is inside this count, not a copy beside it.
   */
  unackedBytes = 0;
  unackedChunks = 0;
  connected = false;

  constructor(private readonly options: ShipClientOptions) {
    this.pool = new AggregatorPool(options.key, () => new Backoff(options.retry, options.random));
    this.unresolved = new Backoff(options.retry, options.random);
    this.channelOptions = {
      credentials: shipCredentials(options.tls),
      tls: options.tls !== undefined,
      initialReconnectMs: options.retry.initialDelayMs,
      maxReconnectMs: options.retry.maxDelayMs,
    };
    this.resolver = new AggregatorResolver({
      addresses: options.addresses,
      resolve: options.resolve ?? systemResolver,
      intervalMs: options.resolveIntervalMs ?? DEFAULT_RESOLVE_INTERVAL_MS,
      clock: options.clock,
      logger: options.logger,
      onTargets: (targets) => this.onTargets(targets),
    });
  }

  /** The address of the aggregator whose stream is open now (its response headers arrived). */
  get aggregator(): string | undefined {
    return this.call === undefined || !this.streamOpen ? undefined : this.channel?.target.address;
  }

  start(): void {
    this.started = true;
    void this.resolver.start();
  }

  enqueue(chunk: SealedChunk): void {
    this.queue.push({ chunk, index: this.nextIndex++, state: 'unsent', parts: undefined, rejected: undefined });
    this.unackedBytes += chunkMemory(chunk);
    this.unackedChunks++;
    this.pump();
  }

  /** Resolves true when every queued chunk is acknowledged (or dropped), false at the deadline. */
  waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.unackedChunks === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = this.options.clock.setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== onIdle);
        resolve(false);
      }, timeoutMs);
      const onIdle = (): void => {
        this.options.clock.clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(onIdle);
    });
  }

  close(): void {
    this.closed = true;
    this.resolver.close();
    if (this.moveTimer !== undefined) this.options.clock.clearTimeout(this.moveTimer);
    if (this.reconnectTimer !== undefined) this.options.clock.clearTimeout(this.reconnectTimer);
    if (this.holdTimer !== undefined) this.options.clock.clearTimeout(this.holdTimer);
    if (this.limitsTimer !== undefined) this.options.clock.clearTimeout(this.limitsTimer);
    const call = this.call;
    this.call = undefined;
    if (call !== undefined) {
      call.end();
      call.cancel();
    }
    this.channel?.client.close();
    this.channel = undefined;
  }

  private onTargets(targets: readonly AggregatorTarget[]): void {
    this.pool.setTargets(targets);
    if (this.closed || !this.started) return;
    if (this.call === undefined) {
      // Waiting for a first address (or for one to cool down): an address may have come.
      if (this.reconnectTimer === undefined || this.pool.pick(this.options.clock.now()) !== undefined) this.scheduleConnect(0);
      return;
    }
    const current = this.channel?.target;
    if (current === undefined || this.moving !== undefined) return;
    if (!this.pool.has(current.address)) {
      this.moveAway('removed');
      return;
    }
    const preferred = this.pool.pick(this.options.clock.now());
    if (preferred === undefined || preferred.address === current.address || this.probeInFlight) return;
    // Back to the preferred aggregator (it came back, or was added), if it accepts a connection now.
    this.probeInFlight = true;
    void probeAggregator(preferred, this.channelOptions, PROBE_TIMEOUT_MS).then((up) => {
      this.probeInFlight = false;
      const now = this.options.clock.now();
      if (!up) {
        this.pool.markFailed(preferred.address, now);
        return;
      }
      if (this.closed || this.call === undefined || this.moving !== undefined) return;
      if (this.pool.pick(now)?.address === preferred.address && this.channel?.target.address !== preferred.address) this.moveAway('rebalance');
    });
  }

  /**
   * Leaves the current aggregator without sending anything twice: no more chunks go on the stream, it
   * is half-closed, the aggregator answers what is in flight and ends it (onDown follows). Cut after
   * MOVE_GRACE_MS if it does not (what is unacknowledged then is resent).
   */
  private moveAway(reason: MoveReason): void {
    const call = this.call;
    if (call === undefined) return;
    this.moving = reason;
    this.options.logger.info({ from: this.channel?.target.address, reason, inflight: this.inflight.size }, 'moving to another aggregator once the chunks in flight are acknowledged');
    call.end();
    this.moveTimer = this.options.clock.setTimeout(() => {
      this.moveTimer = undefined;
      if (call !== this.call) return;
      this.onDown(call, 'the aggregator did not finish the stream in time', reason);
      call.cancel();
    }, MOVE_GRACE_MS);
  }

  private scheduleConnect(delayMs: number): void {
    if (this.reconnectTimer !== undefined) this.options.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = this.options.clock.setTimeout(() => this.connect(), delayMs);
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.closed || this.call !== undefined) return;
    const now = this.options.clock.now();
    const chosen = this.nextTarget;
    this.nextTarget = undefined;
    const target = chosen !== undefined && this.pool.has(chosen.address) ? chosen : this.pool.pick(now);
    if (target === undefined) {
      // No address known yet (names not resolved), or every aggregator cooling down after failures.
      this.resolver.refreshSoon();
      const readyAt = this.pool.nextReadyAt();
      if (readyAt !== undefined) this.scheduleConnect(Math.max(0, readyAt - now));
      else if (!this.giveUp('no address of COLLECTOR_REMOTE_ADDRESS resolves')) {
        this.attempt++;
        this.scheduleConnect(this.unresolved.next());
      }
      return;
    }
    if (this.channel?.target.address !== target.address) {
      this.channel?.client.close();
      this.channel = { target, client: makeIngestClient(target, this.channelOptions) };
    }
    const last = this.lastDown;
    if (last !== undefined && last.address !== target.address) {
      this.options.logger.info({ from: last.address, to: target.address, reason: last.reason, unackedChunks: this.unackedChunks }, 'failing over to another aggregator');
      this.options.onFailover?.(last.reason, last.address, target.address);
    }
    this.lastDown = undefined;
    this.moving = undefined;
    const call = this.channel.client.Ship();
    this.call = call;
    this.inflight = new Map();
    this.writeBlocked = false;
    const waitMs = this.options.limitsWaitMs ?? DEFAULT_LIMITS_WAIT_MS;
    this.limitsDeadline = this.options.clock.now() + waitMs;
    if (this.limitsTimer !== undefined) this.options.clock.clearTimeout(this.limitsTimer);
    this.limitsTimer = this.options.clock.setTimeout(() => {
      this.limitsTimer = undefined;
      if (call !== this.call || this.limitsDeadline === 0) return;
      // No advertisement: an aggregator older than the limits. Chunks within the conservative limits
      // are what it accepts with its defaults.
      this.limitsDeadline = 0;
      this.setLimits(CONSERVATIVE_LIMITS, false);
      this.options.logger.warn({ limits: CONSERVATIVE_LIMITS }, 'the aggregator advertised no limits (an older version?); sending within conservative limits');
      this.pump();
    }, waitMs);
    call.on('metadata', (md: grpc.Metadata) => {
      if (call !== this.call) return;
      this.streamOpen = true;
      const limits = readLimits(md);
      if (limits === undefined && this.limitsDeadline === 0) return;
      if (limits !== undefined) this.setLimits(limits, true);
      else if (this.limitsDeadline !== 0) this.setLimits(CONSERVATIVE_LIMITS, false);
      this.limitsDeadline = 0;
      this.pump();
    });
    call.on('data', (ack: AckMessage) => this.onAck(call, ack));
    call.on('error', (err: grpc.ServiceError) => this.onDown(call, `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`, this.moving ?? 'error'));
    // The aggregator ends the stream when it shuts down (after acknowledging what it took), or after
    // our half-close when we move.
    call.on('end', () => this.onDown(call, 'stream ended by the aggregator', this.moving ?? 'goaway'));
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code !== grpc.status.OK) this.onDown(call, `${grpc.status[s.code] ?? s.code}: ${s.details}`, this.moving ?? 'error');
    });
    call.on('drain', () => {
      if (call !== this.call) return;
      this.writeBlocked = false;
      this.pump();
    });
    this.sendFrom = this.base;
    this.pump();
  }

  private setLimits(limits: IngestLimits, advertised: boolean): void {
    const changed = JSON.stringify(limits) !== JSON.stringify(this.limits);
    this.limits = limits;
    if (changed && advertised) this.options.logger.info({ limits }, 'the aggregator advertised its limits');
    const blocks = limits.lineBlocks === true;
    if (blocks !== this.readsBlocks) {
      this.readsBlocks = blocks;
      if (!blocks) this.options.logger.info({}, 'the aggregator does not read LineBlocks (an older version): each chunk is re-cut into Lines before it is sent');
    }
    this.options.onLimits?.(limits, advertised);
  }

  /** The chunk as parts within the current limits: re-cuts the unsent parts that do not fit. */
  private partsOf(q: Queued): Part[] {
    const chunk = q.chunk;
    let parts = q.parts;
    if (parts === undefined) {
      parts = [{ payload: chunk.payload, backing: chunk.backing, entryCount: chunk.entryCount, longestLine: chunk.longestLine ?? 0, lineBlocks: chunk.lineBlocks === true, state: 'unsent' }];
      // A chunk from a builder that does not track its longest line: assume the worst.
      if (chunk.longestLine === undefined) (parts[0] as { longestLine: number }).longestLine = chunk.payload.length;
    }
    if (parts.every((p) => p.state !== 'unsent' || fits(p, this.limits))) return (q.parts = parts);
    // Every chunk to an aggregator without LineBlocks is re-cut: its limits log says so once (lineBlocks).
    const onlyBlocks = parts.every((p) => p.state !== 'unsent' || fitsSizes(p, this.limits));
    const out: Part[] = [];
    for (const p of parts) {
      if (p.state !== 'unsent' || fits(p, this.limits)) {
        out.push(p);
        continue;
      }
      let fitted;
      try {
        fitted = fitEntryBatch(p.payload, this.limits);
      } catch (err) {
        // Not an EntryBatch we can decode (never from our chunk builder): send it as it is.
        this.options.logger.error({ chunk: chunk.id, err: err instanceof Error ? err.message : String(err) }, 'cannot re-cut a chunk; sending it unchanged');
        out.push(p);
        continue;
      }
      for (const f of fitted) out.push({ payload: f.payload, entryCount: f.entryCount, longestLine: f.longestLine, lineBlocks: false, state: 'unsent' });
    }
    const what = { chunk: chunk.id, bytes: chunk.payload.length, entries: chunk.entryCount, parts: out.length, limits: this.limits };
    if (onlyBlocks) this.options.logger.debug(what, 'chunk re-cut into Lines: the aggregator does not read LineBlocks');
    else this.options.logger.info(what, 'chunk re-cut to fit the aggregator\'s limits');
    this.options.onRefit?.(chunk, out.length);
    return (q.parts = out);
  }

  private pump(): void {
    const call = this.call;
    if (call === undefined || this.writeBlocked || this.closed || this.moving !== undefined) return;
    if (this.holdUntil > this.options.clock.now()) return;
    // The limits of this stream's aggregator are not known yet (the timer pumps at the deadline).
    if (this.limitsDeadline !== 0) return;
    while (this.sendFrom < this.nextIndex) {
      // After a refusal, probe with one chunk at a time until one is accepted: a chunk sent behind
      // a refused one could be accepted before it (space freed in between) and land out of order.
      if (this.probing && this.inflight.size > 0) return;
      const q = this.queue[this.sendFrom - this.base] as Queued;
      if (q.state !== 'unsent') {
        this.sendFrom++;
        continue;
      }
      const parts = this.partsOf(q);
      const i = parts.findIndex((p) => p.state === 'unsent');
      if (!parts.some((p, j) => j > i && p.state === 'unsent')) {
        // The chunk's last unsent part goes out now (or none is left): move on to the next chunk.
        q.state = 'sent';
        this.sendFrom++;
      }
      const part = parts[i];
      if (part === undefined) continue;
      const sequence = ++this.sequence;
      part.state = 'sent';
      this.inflight.set(sequence, { q, part });
      const ok = call.write({ sequence, entries: part.payload, entryCount: part.entryCount, backing: part.backing });
      this.options.onSent?.(q.chunk);
      if (!ok) {
        // Respect the HTTP/2 flow control: wait for 'drain' rather than buffering without bound.
        this.writeBlocked = true;
        return;
      }
    }
  }

  private onAck(call: ShipCall, ack: AckMessage): void {
    if (call !== this.call) return;
    const sent = this.inflight.get(ack.sequence);
    if (sent === undefined) {
      this.options.logger.warn({ sequence: ack.sequence }, 'ack for an unknown sequence');
      return;
    }
    this.inflight.delete(ack.sequence);
    const { q, part } = sent;
    switch (ack.code) {
      case AckCode.OK:
        if (!this.connected) {
          this.connected = true;
          this.options.onConnected?.(true);
        }
        this.attempt = 0;
        this.unresolved.reset();
        if (this.channel !== undefined) this.pool.markGood(this.channel.target.address);
        this.probing = false;
        this.partDone(q, part);
        break;
      case AckCode.INVALID_ARGUMENT:
        this.options.logger.error(
          { chunk: q.chunk.id, entries: part.entryCount, bytes: part.payload.length, reason: ack.message },
          'the aggregator rejected a chunk as invalid: it will never be accepted, its lines are DROPPED',
        );
        q.rejected ??= ack.message;
        this.partDone(q, part);
        break;
      case AckCode.RESOURCE_EXHAUSTED:
        this.probing = true;
        this.requeue(q, part);
        this.hold(Math.max(ack.retryAfterMs, MIN_HOLD_MS));
        break;
      default:
        // UNAVAILABLE (or a code this version does not know): go to another aggregator and resend.
        // Acks come in stream order, so every chunk sent before this one is answered already.
        this.requeue(q, part);
        this.onDown(call, `aggregator answered ${ack.code}: ${ack.message}`, 'goaway');
        call.cancel();
    }
    this.pump();
  }

  private requeue(q: Queued, part: Part): void {
    if (q.state === 'done') return;
    part.state = 'unsent';
    q.state = 'unsent';
    if (q.index < this.sendFrom) this.sendFrom = q.index;
  }

  /** A part is acknowledged (or refused for good); the chunk is done with its last part. */
  private partDone(q: Queued, part: Part): void {
    part.state = 'done';
    if (q.state === 'done' || !(q.parts ?? []).every((p) => p.state === 'done')) return;
    const rejected = q.rejected;
    const chunk = this.done(q);
    if (rejected === undefined) this.options.onAcked(chunk);
    else this.options.onRejected(chunk, rejected);
  }

  private hold(ms: number): void {
    const until = this.options.clock.now() + ms;
    if (until <= this.holdUntil) return;
    this.holdUntil = until;
    if (this.holdTimer !== undefined) this.options.clock.clearTimeout(this.holdTimer);
    this.holdTimer = this.options.clock.setTimeout(() => {
      this.holdTimer = undefined;
      this.holdUntil = 0;
      this.pump();
    }, ms);
  }

  private done(q: Queued): SealedChunk {
    q.state = 'done';
    this.unackedBytes -= chunkMemory(q.chunk);
    this.unackedChunks--;
    const chunk = q.chunk;
    q.chunk = RELEASED;
    q.parts = undefined;
    let drop = 0;
    while (drop < this.queue.length && (this.queue[drop] as Queued).state === 'done') drop++;
    if (drop > 0 && (drop >= 64 || drop === this.queue.length)) {
      this.queue.splice(0, drop);
      this.base += drop;
      // A resend (after RESOURCE_EXHAUSTED) may have moved the send cursor back behind chunks that
      // were acknowledged meanwhile; those are gone now, so the cursor starts at the new base.
      if (this.sendFrom < this.base) this.sendFrom = this.base;
    }
    if (this.unackedChunks === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
    return chunk;
  }

  private onDown(call: ShipCall, reason: string, kind: MoveReason): void {
    if (call !== this.call) return;
    this.call = undefined;
    this.streamOpen = false;
    this.moving = undefined;
    if (this.moveTimer !== undefined) this.options.clock.clearTimeout(this.moveTimer);
    this.moveTimer = undefined;
    for (const { q, part } of this.inflight.values()) if (part.state === 'sent') this.requeue(q, part);
    this.inflight.clear();
    this.limitsDeadline = 0;
    this.sendFrom = this.base;
    if (this.connected) {
      this.connected = false;
      this.options.onConnected?.(false);
    }
    if (this.closed) return;
    const now = this.options.clock.now();
    const address = this.channel?.target.address ?? '';
    this.lastDown = { address, reason: kind };
    if (kind === 'error' || kind === 'goaway') {
      // This aggregator cools down; another one that does not is dialed at once. One that is shutting
      // down is not tried again before the next resolve tick when there is another to go to (it would
      // accept a connection while it drains, and send us away again).
      if (this.giveUp(reason)) return;
      this.attempt++;
      this.pool.markFailed(address, now, kind === 'goaway' && this.pool.size > 1 ? (this.options.resolveIntervalMs ?? DEFAULT_RESOLVE_INTERVAL_MS) : 0);
      this.resolver.refreshSoon();
    }
    const next = this.pool.pick(now);
    this.nextTarget = next;
    const delay = next !== undefined ? 0 : Math.max(0, (this.pool.nextReadyAt() ?? now) - now);
    this.options.logger.warn({ aggregator: address, reason, kind, retryInMs: Math.round(delay), next: next?.address, attempt: this.attempt, unackedChunks: this.unackedChunks }, 'stream to the aggregator is down; reconnecting');
    this.options.onReconnect?.(kind);
    this.scheduleConnect(delay);
  }

  /** COLLECTOR_RETRY_MAX_TIMES consecutive failures: reports the fatal error; true when given up. */
  private giveUp(reason: string): boolean {
    const maxTimes = this.options.retry.maxTimes;
    if (maxTimes === undefined || this.attempt < maxTimes) return false;
    this.options.onFatal(new McError(ErrorCode.NotConnected, `gave up after ${this.attempt} failed attempts to reach ${this.options.addresses.join(',')}: ${reason}`));
    return true;
  }
}

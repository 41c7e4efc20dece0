import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { backoffDelayMs } from '../retry/backoff.js';
import type { BackoffPolicy } from '../retry/backoff.js';
import { ErrorCode, McError } from '../errors.js';
import type { Clock, Random, TimerHandle } from '../util/clock.js';
import { fitEntryBatch } from '../wire/entry-batch-fit.js';
import { AckCode, loadIngestApi } from '../wire/grpc-api.js';
import type { AckMessage, ChunkMessage } from '../wire/grpc-api.js';
import { CONSERVATIVE_LIMITS, readLimits } from '../wire/ingest-limits.js';
import type { IngestLimits } from '../wire/ingest-limits.js';
import type { SealedChunk } from './chunk-builder.js';

/**
 * The shipping side: one bidirectional Ingest.Ship stream at a time. Every sealed chunk stays queued
 * until the aggregator acknowledges it; a broken stream is replaced after an exponential backoff with
 * full jitter, and every chunk not acknowledged on it is sent again, in order, on the next one.
 * What an Ack code means is decided here once:
 *  - OK: durable at the aggregator, the chunk is done;
 *  - RESOURCE_EXHAUSTED: the spool is full: hold sending for retry_after_ms, then resend (never drop),
 *    one chunk at a time until one is accepted again (chunks already in flight behind the refused
 *    one may still be accepted before it: the one way a file's lines can arrive out of order);
 *  - UNAVAILABLE: the aggregator is going away: reconnect and resend;
 *  - INVALID_ARGUMENT: it will never be accepted: dropped, counted and logged as an error.
 *
 * Limits: the aggregator advertises its chunk limits in the response headers of each stream. Nothing
 * is sent on a new stream before they arrive (or, from an aggregator too old to send them, before
 * `limitsWaitMs` passes; then CONSERVATIVE_LIMITS apply). A queued chunk that does not fit the limits
 * (sealed before they were known, or under a previous aggregator's) is re-cut into parts that do
 * (long lines into flagged pieces) and counts as acknowledged once every part is.
 */
export interface ShipClientOptions {
  readonly address: string;
  readonly credentials: grpc.ChannelCredentials;
  readonly retry: BackoffPolicy & { readonly maxTimes?: number | undefined };
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  onAcked(chunk: SealedChunk): void;
  onRejected(chunk: SealedChunk, message: string): void;
  /** Connection attempts exhausted (COLLECTOR_RETRY_MAX_TIMES). */
  onFatal(err: McError): void;
  onSent?(chunk: SealedChunk): void;
  onReconnect?(): void;
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
  readonly entryCount: number;
  readonly longestLine: number;
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

type ShipCall = grpc.ClientDuplexStream<ChunkMessage, AckMessage>;

const RELEASED: SealedChunk = Object.freeze({ id: 0, payload: Buffer.alloc(0), entryCount: 0, ranges: [] });

/** Floor for a RESOURCE_EXHAUSTED hold when the aggregator gives no retry_after_ms. */
const MIN_HOLD_MS = 100;

const DEFAULT_LIMITS_WAIT_MS = 2000;

function fits(part: Part, limits: IngestLimits): boolean {
  return part.payload.length <= limits.maxChunkBytes && part.entryCount <= limits.maxEntriesPerChunk && part.longestLine <= limits.maxLineBytes;
}

export class ShipClient {
  private readonly client: grpc.Client & { Ship(): ShipCall };
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
  /** Sending on the current stream waits for its limits until this time (0: known). */
  private limitsDeadline = 0;
  private limitsTimer: TimerHandle | undefined;
  private idleWaiters: Array<() => void> = [];
  unackedBytes = 0;
  unackedChunks = 0;
  connected = false;

  constructor(private readonly options: ShipClientOptions) {
    const { Client } = loadIngestApi();
    this.client = new Client(options.address, options.credentials, {
      // The channel's own reconnect backoff would otherwise grow to 2 minutes while the aggregator is away.
      'grpc.initial_reconnect_backoff_ms': options.retry.initialDelayMs,
      'grpc.max_reconnect_backoff_ms': options.retry.maxDelayMs,
      // A DNS name with several addresses: spread collectors (each new stream) round-robin.
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      'grpc.enable_retries': 0,
    }) as unknown as grpc.Client & { Ship(): ShipCall };
  }

  start(): void {
    this.connect();
  }

  enqueue(chunk: SealedChunk): void {
    this.queue.push({ chunk, index: this.nextIndex++, state: 'unsent', parts: undefined, rejected: undefined });
    this.unackedBytes += chunk.payload.length;
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
    if (this.reconnectTimer !== undefined) this.options.clock.clearTimeout(this.reconnectTimer);
    if (this.holdTimer !== undefined) this.options.clock.clearTimeout(this.holdTimer);
    if (this.limitsTimer !== undefined) this.options.clock.clearTimeout(this.limitsTimer);
    const call = this.call;
    this.call = undefined;
    if (call !== undefined) {
      call.end();
      call.cancel();
    }
    this.client.close();
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.closed) return;
    const call = this.client.Ship();
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
      const limits = readLimits(md);
      if (limits === undefined && this.limitsDeadline === 0) return;
      if (limits !== undefined) this.setLimits(limits, true);
      else if (this.limitsDeadline !== 0) this.setLimits(CONSERVATIVE_LIMITS, false);
      this.limitsDeadline = 0;
      this.pump();
    });
    call.on('data', (ack: AckMessage) => this.onAck(call, ack));
    call.on('error', (err: grpc.ServiceError) => this.onDown(call, `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`));
    call.on('end', () => this.onDown(call, 'stream ended by the aggregator'));
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code !== grpc.status.OK) this.onDown(call, `${grpc.status[s.code] ?? s.code}: ${s.details}`);
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
    this.options.onLimits?.(limits, advertised);
  }

  /** The chunk as parts within the current limits: re-cuts the unsent parts that do not fit. */
  private partsOf(q: Queued): Part[] {
    const chunk = q.chunk;
    let parts = q.parts;
    if (parts === undefined) {
      parts = [{ payload: chunk.payload, entryCount: chunk.entryCount, longestLine: chunk.longestLine ?? 0, state: 'unsent' }];
      // A chunk from a builder that does not track its longest line: assume the worst.
      if (chunk.longestLine === undefined) (parts[0] as { longestLine: number }).longestLine = chunk.payload.length;
    }
    if (parts.every((p) => p.state !== 'unsent' || fits(p, this.limits))) return (q.parts = parts);
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
      for (const f of fitted) out.push({ payload: f.payload, entryCount: f.entryCount, longestLine: f.longestLine, state: 'unsent' });
    }
    this.options.logger.info({ chunk: chunk.id, bytes: chunk.payload.length, entries: chunk.entryCount, parts: out.length, limits: this.limits }, 'chunk re-cut to fit the aggregator\'s limits');
    this.options.onRefit?.(chunk, out.length);
    return (q.parts = out);
  }

  private pump(): void {
    const call = this.call;
    if (call === undefined || this.writeBlocked || this.closed) return;
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
      const ok = call.write({ sequence, entries: part.payload, entryCount: part.entryCount });
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
        // UNAVAILABLE (or a code this version does not know): reconnect and resend.
        this.requeue(q, part);
        this.onDown(call, `aggregator answered ${ack.code}: ${ack.message}`);
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
    this.unackedBytes -= q.chunk.payload.length;
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

  private onDown(call: ShipCall, reason: string): void {
    if (call !== this.call) return;
    this.call = undefined;
    for (const { q, part } of this.inflight.values()) if (part.state === 'sent') this.requeue(q, part);
    this.inflight.clear();
    this.limitsDeadline = 0;
    this.sendFrom = this.base;
    if (this.connected) {
      this.connected = false;
      this.options.onConnected?.(false);
    }
    if (this.closed) return;
    const maxTimes = this.options.retry.maxTimes;
    if (maxTimes !== undefined && this.attempt >= maxTimes) {
      this.options.onFatal(new McError(ErrorCode.NotConnected, `gave up after ${this.attempt} failed attempts to reach ${this.options.address}: ${reason}`));
      return;
    }
    const delay = backoffDelayMs(this.options.retry, this.attempt, this.options.random);
    this.attempt++;
    this.options.logger.warn({ reason, retryInMs: Math.round(delay), attempt: this.attempt, unackedChunks: this.unackedChunks }, 'stream to the aggregator is down; reconnecting');
    this.options.onReconnect?.();
    this.reconnectTimer = this.options.clock.setTimeout(() => this.connect(), delay);
  }
}


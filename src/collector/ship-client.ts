import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { backoffDelayMs } from '../emitters/backoff.js';
import type { BackoffPolicy } from '../emitters/backoff.js';
import { ErrorCode, McError } from '../errors.js';
import type { Clock, Random, TimerHandle } from '../util/clock.js';
import { AckCode, loadIngestApi } from '../wire/grpc-api.js';
import type { AckMessage, ChunkMessage } from '../wire/grpc-api.js';
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
}

interface Queued {
  /** Released once done, so acknowledged payloads never wait in the queue for compaction. */
  chunk: SealedChunk;
  readonly index: number;
  state: 'unsent' | 'sent' | 'done';
}

type ShipCall = grpc.ClientDuplexStream<ChunkMessage, AckMessage>;

const RELEASED: SealedChunk = Object.freeze({ id: 0, payload: Buffer.alloc(0), entryCount: 0, ranges: [] });

/** Floor for a RESOURCE_EXHAUSTED hold when the aggregator gives no retry_after_ms. */
const MIN_HOLD_MS = 100;

export class ShipClient {
  private readonly client: grpc.Client & { Ship(): ShipCall };
  private queue: Queued[] = [];
  /** Absolute index of queue[0]. */
  private base = 0;
  private nextIndex = 0;
  /** Absolute index from which to look for unsent chunks. */
  private sendFrom = 0;
  private call: ShipCall | undefined;
  private inflight = new Map<number, Queued>();
  private sequence = 0;
  private writeBlocked = false;
  private holdUntil = 0;
  /** The spool was full: one chunk in flight at a time until one is accepted. */
  private probing = false;
  private holdTimer: TimerHandle | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private attempt = 0;
  private closed = false;
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
    this.queue.push({ chunk, index: this.nextIndex++, state: 'unsent' });
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

  private pump(): void {
    const call = this.call;
    if (call === undefined || this.writeBlocked || this.closed) return;
    if (this.holdUntil > this.options.clock.now()) return;
    while (this.sendFrom < this.nextIndex) {
      // After a refusal, probe with one chunk at a time until one is accepted: a chunk sent behind
      // a refused one could be accepted before it (space freed in between) and land out of order.
      if (this.probing && this.inflight.size > 0) return;
      const q = this.queue[this.sendFrom - this.base] as Queued;
      this.sendFrom++;
      if (q.state !== 'unsent') continue;
      const sequence = ++this.sequence;
      q.state = 'sent';
      this.inflight.set(sequence, q);
      const ok = call.write({ sequence, entries: q.chunk.payload, entryCount: q.chunk.entryCount });
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
    const q = this.inflight.get(ack.sequence);
    if (q === undefined) {
      this.options.logger.warn({ sequence: ack.sequence }, 'ack for an unknown sequence');
      return;
    }
    this.inflight.delete(ack.sequence);
    switch (ack.code) {
      case AckCode.OK:
        if (!this.connected) {
          this.connected = true;
          this.options.onConnected?.(true);
        }
        this.attempt = 0;
        this.probing = false;
        this.options.onAcked(this.done(q));
        break;
      case AckCode.INVALID_ARGUMENT:
        this.options.logger.error(
          { chunk: q.chunk.id, entries: q.chunk.entryCount, bytes: q.chunk.payload.length, reason: ack.message },
          'the aggregator rejected a chunk as invalid: it will never be accepted, its lines are DROPPED',
        );
        this.options.onRejected(this.done(q), ack.message);
        break;
      case AckCode.RESOURCE_EXHAUSTED:
        this.probing = true;
        this.requeue(q);
        this.hold(Math.max(ack.retryAfterMs, MIN_HOLD_MS));
        break;
      default:
        // UNAVAILABLE (or a code this version does not know): reconnect and resend.
        this.requeue(q);
        this.onDown(call, `aggregator answered ${ack.code}: ${ack.message}`);
        call.cancel();
    }
    this.pump();
  }

  private requeue(q: Queued): void {
    q.state = 'unsent';
    if (q.index < this.sendFrom) this.sendFrom = q.index;
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
    for (const q of this.inflight.values()) if (q.state === 'sent') this.requeue(q);
    this.inflight.clear();
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


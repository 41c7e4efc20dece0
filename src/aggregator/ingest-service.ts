import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../telemetry/logger.js';
import type { AggregatorMetrics, RefuseReason } from '../telemetry/aggregator-metrics.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { ErrorCode, McError, errorMessage } from '../errors.js';
import { AckCode } from '../wire/grpc-api.js';
import type { AckMessage, ChunkMessage } from '../wire/grpc-api.js';
import type { AdmissionLimits } from './admission.js';
import { admitChunk } from './admission.js';

/** What the ingest service needs of the spool (the Spool class satisfies it). */
export interface ChunkSink {
  /** Durable on resolve; rejects McError(SpoolFull) when there is no room, McError(SpoolClosed) after close. */
  append(data: Buffer, entryCount: number): Promise<unknown>;
  readonly bytes: number;
}

export interface IngestServiceOptions {
  readonly sink: ChunkSink;
  readonly limits: AdmissionLimits;
  /** Spool bound, to refuse at once (in stream order) what cannot fit. */
  readonly maxSpoolBytes: number;
  readonly metrics?: AggregatorMetrics;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** retry_after_ms sent with RESOURCE_EXHAUSTED. */
  readonly retryAfterMs?: number;
  /** Chunks of one stream awaiting their ack before the stream is paused (HTTP/2 flow control). */
  readonly maxInflightChunksPerStream?: number;
}

type ShipCall = grpc.ServerDuplexStream<ChunkMessage, AckMessage>;

interface StreamState {
  readonly id: number;
  readonly call: ShipCall;
  /** Resolves after the ack of the last chunk received so far is written. */
  tail: Promise<void>;
  inflight: number;
  paused: boolean;
  closed: boolean;
  /** After a spool-full refusal, later chunks of this stream are refused too until this time. */
  refuseUntil: number;
}

const DEFAULT_RETRY_AFTER_MS = 1000;

/**
 * The `Ingest.Ship` handler. Per chunk: validate, append to the spool, answer ONE ack once the append
 * is durable. Appends of one stream run concurrently (they share group commits), but acks go out in
 * the order the chunks came in. A bad chunk gets INVALID_ARGUMENT and the stream carries on; nothing a
 * client sends can throw out of here into other streams.
 */
export class IngestService {
  private readonly streams = new Set<StreamState>();
  private readonly clock: Clock;
  private nextStreamId = 1;
  private shuttingDown = false;

  constructor(private readonly options: IngestServiceOptions) {
    this.clock = options.clock ?? systemClock;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** The handler to register as `Ship`. */
  readonly ship = (call: ShipCall): void => {
    const state: StreamState = {
      id: this.nextStreamId++,
      call,
      tail: Promise.resolve(),
      inflight: 0,
      paused: false,
      closed: false,
      refuseUntil: 0,
    };
    this.streams.add(state);
    this.options.metrics?.streamsOpen.inc();
    const log = this.options.logger?.child({ stream: state.id, peer: call.getPeer() });
    log?.debug('stream opened');
    // Bounds memory per stream (chunks may be up to AGGREGATOR_MAX_CHUNK_BYTES each) while keeping enough
    // appends in flight to fill a group commit.
    const maxInflight = this.options.maxInflightChunksPerStream ?? 64;

    const close = (why: string): void => {
      if (state.closed) return;
      state.closed = true;
      this.streams.delete(state);
      this.options.metrics?.streamsOpen.dec();
      log?.debug({ why }, 'stream closed');
    };

    call.on('data', (chunk: ChunkMessage) => {
      const ackPromise = this.handleChunk(state, chunk);
      state.inflight++;
      if (!state.paused && state.inflight >= maxInflight) {
        state.paused = true;
        call.pause();
      }
      state.tail = state.tail
        .then(() => ackPromise)
        .then((ack) => {
          state.inflight--;
          if (!state.closed) call.write(ack);
          if (state.paused && state.inflight < maxInflight / 2) {
            state.paused = false;
            call.resume();
          }
        })
        .catch((err: unknown) => {
          log?.error({ err: errorMessage(err) }, 'cannot write an ack');
        });
    });
    call.on('end', () => {
      // The client half-closed: answer what is in flight, then end our side.
      void state.tail.then(() => {
        if (!state.closed) call.end();
        close('client finished');
      });
    });
    call.on('cancelled', () => close('cancelled'));
    call.on('error', (err: Error) => {
      log?.debug({ err: err.message }, 'stream error');
      close('error');
    });
    call.on('close', () => close('closed'));
  };

  private refuse(chunk: ChunkMessage, reason: RefuseReason, code: AckCode, message: string, retryAfterMs = 0): AckMessage {
    const m = this.options.metrics;
    m?.chunksRefused.inc({ reason });
    m?.entriesRefused.inc({ reason }, Number.isFinite(chunk.entryCount) ? chunk.entryCount : 0);
    return { sequence: chunk.sequence, code, message, retryAfterMs };
  }

  /** Decides synchronously (so refusals keep stream order), then awaits the durable append. */
  private handleChunk(state: StreamState, chunk: ChunkMessage): Promise<AckMessage> {
    const m = this.options.metrics;
    m?.chunksReceived.inc();
    m?.entriesReceived.inc(chunk.entryCount);
    m?.bytesReceived.inc(chunk.entries?.length ?? 0);
    if (this.shuttingDown) {
      return Promise.resolve(this.refuse(chunk, 'shutting_down', AckCode.UNAVAILABLE, 'aggregator is shutting down; reconnect and resend'));
    }
    const admission = admitChunk(chunk, this.options.limits);
    if (!admission.ok) {
      this.options.logger?.warn({ stream: state.id, sequence: chunk.sequence, reason: admission.reason }, 'chunk refused: invalid');
      return Promise.resolve(this.refuse(chunk, 'invalid', AckCode.INVALID_ARGUMENT, admission.reason));
    }
    if (admission.entryCount === 0) {
      m?.chunksAcked.inc();
      return Promise.resolve({ sequence: chunk.sequence, code: AckCode.OK, message: '', retryAfterMs: 0 });
    }
    const retryAfterMs = this.options.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS;
    const now = this.clock.now();
    // Once a chunk of this stream is refused for lack of room, refuse the ones behind it too for a
    // while: otherwise a smaller later chunk could slip into the spool ahead of the one to be resent,
    // and the stream's order would be lost.
    if (now < state.refuseUntil || this.options.sink.bytes + chunk.entries.length > this.options.maxSpoolBytes) {
      if (now >= state.refuseUntil) state.refuseUntil = now + retryAfterMs;
      return Promise.resolve(this.spoolFull(chunk, retryAfterMs));
    }
    return this.options.sink.append(chunk.entries, admission.entryCount).then(
      (): AckMessage => {
        m?.chunksAcked.inc();
        m?.entriesAcked.inc(admission.entryCount);
        return { sequence: chunk.sequence, code: AckCode.OK, message: '', retryAfterMs: 0 };
      },
      (err: unknown): AckMessage => {
        if (err instanceof McError && err.code === ErrorCode.SpoolFull) {
          state.refuseUntil = Math.max(state.refuseUntil, this.clock.now() + retryAfterMs);
          return this.spoolFull(chunk, retryAfterMs);
        }
        if (err instanceof McError && err.code === ErrorCode.SpoolClosed) {
          return this.refuse(chunk, 'shutting_down', AckCode.UNAVAILABLE, 'aggregator is shutting down; reconnect and resend');
        }
        // A disk error: the chunk is not durable, so it must not be acked; the client resends it.
        this.options.logger?.error({ stream: state.id, sequence: chunk.sequence, err: errorMessage(err) }, 'spool append failed');
        return this.refuse(chunk, 'spool_error', AckCode.UNAVAILABLE, `spool append failed: ${errorMessage(err)}`, retryAfterMs);
      },
    );
  }

  private spoolFull(chunk: ChunkMessage, retryAfterMs: number): AckMessage {
    return this.refuse(chunk, 'spool_full', AckCode.RESOURCE_EXHAUSTED, 'spool is full; resend later', retryAfterMs);
  }

  /**
   * Shutdown, step one: new chunks are answered UNAVAILABLE; resolves when every chunk received so far
   * has its ack written (or `deadlineMs` passes), then ends every stream.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.shuttingDown = true;
    const tails = [...this.streams].map((s) => s.tail);
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const timedOut = await Promise.race([
      Promise.all(tails).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = this.clock.setTimeout(() => resolve(true), deadlineMs);
      }),
    ]);
    if (timer !== undefined) this.clock.clearTimeout(timer);
    if (timedOut) this.options.logger?.warn('shutdown deadline passed with acks still pending');
    for (const s of [...this.streams]) {
      if (!timedOut) await s.tail;
      if (!s.closed) {
        s.closed = true;
        this.streams.delete(s);
        this.options.metrics?.streamsOpen.dec();
        s.call.end();
      }
    }
  }
}

import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../telemetry/logger.js';
import type { AggregatorMetrics, RefuseReason } from '../telemetry/aggregator-metrics.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { ErrorCode, McError, errorMessage } from '../errors.js';
import { AckCode } from '../wire/grpc-api.js';
import type { AckMessage, ChunkMessage } from '../wire/grpc-api.js';
import { partitionOversized } from '../wire/entry-batch-fit.js';
import { scanEntryBatch } from '../wire/entry-batch.js';
import { writeLimits } from '../wire/ingest-limits.js';
import type { DedupeMetrics } from '../telemetry/dedupe-metrics.js';
import type { AdmissionLimits } from './admission.js';
import { admitChunk } from './admission.js';
import type { AcceptedOffsets, ChunkIdentity } from './accepted-offsets.js';
import { releaseDecodedPieces } from './grpc-decoder-release.js';
import { disableReadAhead, gateReads } from './grpc-read-ahead.js';
import { InflightBudget } from './inflight-budget.js';
import type { StreamBudget } from './inflight-budget.js';
import { RefusalOrder } from './refusal-order.js';
import type { ChunkTicket } from './refusal-order.js';

/** What the ingest service needs of the spool (the Spool class satisfies it). */
export interface ChunkSink {
  /**
   * Durable on resolve; rejects McError(SpoolFull) when there is no room, McError(SpoolClosed) after close.
   * `spans`: where the lines of `data` lie (lineSpans), when the caller has them; the reader takes them with the record.
   */
  append(data: Buffer, entryCount: number, spans?: Uint32Array): Promise<unknown>;
  /**
   * Why append() would refuse `dataBytes` now (the McError it would reject with), or undefined: the same
   * decision, synchronously, so that nothing of a stream is stored after a refused chunk of it.
   */
  refusal(dataBytes: number): Error | undefined;
  readonly bytes: number;
}

/** Where lines over AGGREGATOR_MAX_LINE_BYTES go instead of the spool (the dead-letter file). */
export interface DeadLetterSink {
  /** Durable on resolve. `data` is an EntryBatch. */
  add(data: Buffer, entryCount: number, reason: string): Promise<void>;
}

export interface IngestServiceOptions {
  readonly sink: ChunkSink;
  readonly limits: AdmissionLimits;
  /** Keeps lines over limits.maxLineBytes (a chunk holding one is accepted without it). */
  readonly deadLetters: DeadLetterSink;
  /** Spool bound, to refuse at once (in stream order) what cannot fit. */
  readonly maxSpoolBytes: number;
  readonly metrics?: AggregatorMetrics;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** retry_after_ms sent with RESOURCE_EXHAUSTED. */
  readonly retryAfterMs?: number;
  /** Chunks of one stream awaiting their ack before it reads no further (HTTP/2 flow control). */
  readonly maxInflightChunksPerStream?: number;
  /** Chunk bytes of one stream awaiting their ack, with its next chunk, before it reads no further (default 2 × maxChunkBytes). */
  readonly maxInflightBytesPerStream?: number;
  /**
   * AGGREGATOR_MAX_INFLIGHT_BYTES: chunk bytes awaiting their ack, all streams together (default 16
   * MiB); each stream gets a fair share of it (inflight-budget.ts).
   */
  readonly maxInflightBytes?: number;
  /**
   * Offsets already accepted per collector and file (rebuilt from the spool at start-up): entries of
   * a resent chunk inside them are acknowledged without being appended again. Without it, every
   * chunk is appended (at-least-once into the spool).
   */
  readonly accepted?: AcceptedOffsets;
  readonly dedupeMetrics?: DedupeMetrics;
}

type ShipCall = grpc.ServerDuplexStream<ChunkMessage, AckMessage>;

interface StreamState {
  readonly id: number;
  readonly call: ShipCall;
  /** Resolves after the ack of the last chunk received so far is written. */
  tail: Promise<void>;
  readonly budget: StreamBudget;
  /** Nothing of the stream is stored after a chunk of it refused for lack of room, until that one is resent. */
  readonly order: RefusalOrder;
  closed: boolean;
  /** Set while a chunk of this stream waits for another stream's append of the same file (see admitNew). */
  gate: Promise<unknown> | undefined;
}

/** An append in flight for a file, so a resend of the same entries on another stream waits for it. */
interface InflightAppend {
  readonly stream: number;
  readonly done: Promise<unknown>;
}

const DEFAULT_RETRY_AFTER_MS = 1000;

/** A chunk received after one of its stream that was refused for lack of room (refusal-order.ts). */
class BehindRefused extends Error {
  constructor() {
    super('behind a chunk refused for lack of room');
    this.name = 'BehindRefused';
  }
}
export const DEFAULT_MAX_INFLIGHT_BYTES = 16 * 1024 * 1024;

/**
 * The `Ingest.Ship` handler. Per chunk: validate, append to the spool, answer ONE ack once the append
 * is durable. Appends of one stream run concurrently (they share group commits), but acks go out in
 * the order the chunks came in. A bad chunk gets INVALID_ARGUMENT and the stream carries on; nothing a
 * client sends can throw out of here into other streams.
 */
export class IngestService {
  private readonly streams = new Set<StreamState>();
  /** Appends in flight per "collector\0file", for the dedupe (see admitNew). */
  private readonly inflight = new Map<string, InflightAppend[]>();
  private readonly clock: Clock;
  private readonly budget: InflightBudget;
  private nextStreamId = 1;
  private shuttingDown = false;

  constructor(private readonly options: IngestServiceOptions) {
    this.clock = options.clock ?? systemClock;
    const m = options.metrics;
    this.budget = new InflightBudget({
      totalBytes: options.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES,
      // Bounds memory per stream (chunks may be up to AGGREGATOR_MAX_CHUNK_BYTES each) while keeping
      // enough appends in flight to fill a group commit.
      maxStreamBytes: options.maxInflightBytesPerStream ?? 2 * options.limits.maxChunkBytes,
      maxStreamChunks: options.maxInflightChunksPerStream ?? 64,
      clock: this.clock,
      onChange:
        m === undefined
          ? undefined
          : (bytes, paused) => {
              m.inflightBytes.set(bytes);
              m.streamsPaused.set(paused);
            },
    });
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** The handler to register as `Ship`. */
  readonly ship = (call: ShipCall): void => {
    // A call whose reading cannot be gated (not grpc-js's Readable) is paused and resumed instead.
    let read = (): void => {
      call.resume();
    };
    const state: StreamState = {
      id: this.nextStreamId++,
      call,
      tail: Promise.resolve(),
      budget: this.budget.add({ read: () => read() }),
      order: new RefusalOrder(),
      closed: false,
      gate: undefined,
    };
    this.streams.add(state);
    this.options.metrics?.streamsOpen.inc();
    const log = this.options.logger?.child({ stream: state.id, peer: call.getPeer() });
    log?.debug('stream opened');
    // The limits go out in the response headers at once, before the first ack: a collector waits for
    // them before it sends, and never builds a chunk or a line beyond them.
    call.sendMetadata(writeLimits(new grpc.Metadata(), this.options.limits));
    if (!disableReadAhead(call) && call instanceof Readable) log?.warn('cannot turn off the read-ahead of this gRPC call: a paused stream may hold up to 16 chunks');
    // The stream reads its next message only when the in-flight budget has room for it (inflight-budget.ts).
    const gated = call instanceof Readable ? gateReads(call, () => state.budget.request()) : undefined;
    if (gated !== undefined) read = gated;
    else if (call instanceof Readable) log?.warn('cannot gate the reading of this gRPC call: it is paused and resumed instead');
    if (!releaseDecodedPieces(call) && call instanceof Readable) log?.warn('cannot reach the message decoder of this gRPC call: it keeps a copy of its last chunk');

    const close = (why: string): void => {
      if (state.closed) return;
      state.closed = true;
      state.budget.remove();
      this.streams.delete(state);
      this.options.metrics?.streamsOpen.dec();
      log?.debug({ why }, 'stream closed');
    };

    call.on('data', (chunk: ChunkMessage) => {
      const ticket = state.order.arrive();
      const ackPromise = this.handleChunk(state, chunk, ticket);
      const bytes = Buffer.isBuffer(chunk.entries) ? chunk.entries.length : 0;
      state.budget.take(bytes);
      // Ungated: ask for the next one here, and hold the call until the budget lets it read.
      if (gated === undefined && !state.budget.request()) call.pause();
      state.tail = state.tail
        .then(() => ackPromise)
        .then((ack) => {
          state.order.settle(ticket);
          if (!state.closed) call.write(ack);
          state.budget.release(bytes);
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

  /** `entries`: the entries the server counted in the chunk (never the client's entry_count). */
  private refuse(chunk: ChunkMessage, entries: number, reason: RefuseReason, code: AckCode, message: string, retryAfterMs = 0): AckMessage {
    const m = this.options.metrics;
    m?.chunksRefused.inc({ reason });
    m?.entriesRefused.inc({ reason }, entries);
    return { sequence: chunk.sequence, code, message, retryAfterMs };
  }

  /** Decides synchronously (so refusals keep stream order), then awaits the durable append. */
  private handleChunk(state: StreamState, chunk: ChunkMessage, ticket: ChunkTicket): Promise<AckMessage> {
    const m = this.options.metrics;
    m?.chunksReceived.inc();
    m?.bytesReceived.inc(Buffer.isBuffer(chunk.entries) ? chunk.entries.length : 0);
    // The scan comes first, also when shutting down: metrics count what the server saw.
    const admission = admitChunk(chunk, this.options.limits, this.options.accepted !== undefined);
    m?.entriesReceived.inc(admission.ok ? admission.entryCount : admission.entriesSeen);
    if (!admission.ok) {
      this.options.logger?.warn({ stream: state.id, sequence: chunk.sequence, reason: admission.reason }, 'chunk refused: invalid');
      return Promise.resolve(this.refuse(chunk, admission.entriesSeen, 'invalid', AckCode.INVALID_ARGUMENT, admission.reason));
    }
    const entries = admission.entryCount;
    if (this.shuttingDown) {
      return Promise.resolve(this.refuse(chunk, entries, 'shutting_down', AckCode.UNAVAILABLE, 'aggregator is shutting down; reconnect and resend'));
    }
    if (admission.entryCount === 0) {
      m?.chunksAcked.inc();
      return Promise.resolve({ sequence: chunk.sequence, code: AckCode.OK, message: '', retryAfterMs: 0 });
    }
    const retryAfterMs = this.options.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS;
    // Once a chunk of this stream is refused for lack of room, the ones behind it are refused too until
    // it is resent (refusal-order.ts): otherwise a smaller later chunk could slip into the spool ahead
    // of it, and the stream's order would be lost.
    if (!state.order.admits(chunk.entries)) {
      return Promise.resolve(this.spoolFull(chunk, entries, retryAfterMs, this.behindMessage(state)));
    }
    if (this.options.sink.bytes + chunk.entries.length > this.options.maxSpoolBytes) {
      state.order.refuse(ticket, chunk.sequence, chunk.entries);
      return Promise.resolve(this.spoolFull(chunk, entries, retryAfterMs));
    }
    return this.admitNew(state, chunk, ticket, entries, admission.oversizedLines, admission.spans, admission.identity).then(
      (kept): AckMessage => {
        m?.chunksAcked.inc();
        m?.entriesAcked.inc(kept);
        return { sequence: chunk.sequence, code: AckCode.OK, message: '', retryAfterMs: 0 };
      },
      (err: unknown): AckMessage => {
        if (err instanceof BehindRefused) return this.spoolFull(chunk, entries, retryAfterMs, this.behindMessage(state));
        if (err instanceof McError && err.code === ErrorCode.SpoolFull) return this.spoolFull(chunk, entries, retryAfterMs);
        if (err instanceof McError && err.code === ErrorCode.SpoolClosed) {
          return this.refuse(chunk, entries, 'shutting_down', AckCode.UNAVAILABLE, 'aggregator is shutting down; reconnect and resend');
        }
        // A disk error: the chunk is not durable, so it must not be acked; the client resends it.
        this.options.logger?.error({ stream: state.id, sequence: chunk.sequence, err: errorMessage(err) }, 'spool append failed');
        return this.refuse(chunk, entries, 'spool_error', AckCode.UNAVAILABLE, `spool append failed: ${errorMessage(err)}`, retryAfterMs);
      },
    );
  }

  /**
   * Deduplication by entry identity, then store(). A chunk whose files have an append in flight from
   * another stream (a collector that reconnected and resent what the old stream was still appending)
   * waits for those to settle before deciding, and so do the later chunks of its stream (order).
   */
  private admitNew(state: StreamState, chunk: ChunkMessage, ticket: ChunkTicket, entries: number, oversizedLines: number, spans: Uint32Array, identity?: ChunkIdentity): Promise<number> {
    const accepted = this.options.accepted;
    // Found by the admission scan (asked for whenever deduplication is on).
    const id = accepted === undefined ? undefined : identity;
    if (accepted === undefined || id === undefined) return this.store(state, chunk, ticket, chunk.entries, entries, oversizedLines, spans);
    const keys = id.runs.map((r) => `${id.collectorId}\u0000${r.fileId}`);
    const others: Promise<unknown>[] = [];
    for (const k of keys) for (const a of this.inflight.get(k) ?? []) if (a.stream !== state.id) others.push(a.done);
    const decide = async (): Promise<number> => {
      if (others.length > 0) await Promise.allSettled(others);
      return this.storeNew(state, chunk, ticket, entries, oversizedLines, accepted, id, spans);
    };
    const gate = state.gate;
    const work = gate === undefined && others.length === 0 ? decide() : (gate ?? Promise.resolve()).then(decide);
    if (gate !== undefined || others.length > 0) {
      const settled = work.catch(() => undefined);
      state.gate = settled;
      void settled.then(() => {
        if (state.gate === settled) state.gate = undefined;
      });
    }
    const done = work.catch(() => undefined);
    const mine: InflightAppend = { stream: state.id, done };
    for (const k of new Set(keys)) {
      const list = this.inflight.get(k);
      if (list === undefined) this.inflight.set(k, [mine]);
      else list.push(mine);
    }
    void done.then(() => {
      for (const k of new Set(keys)) {
        const list = this.inflight.get(k);
        if (list === undefined) continue;
        const i = list.indexOf(mine);
        if (i !== -1) list.splice(i, 1);
        if (list.length === 0) this.inflight.delete(k);
      }
    });
    return work;
  }

  /** Appends what the aggregator has not accepted yet; records the chunk's offsets once durable. */
  private async storeNew(
    state: StreamState,
    chunk: ChunkMessage,
    ticket: ChunkTicket,
    entries: number,
    oversizedLines: number,
    accepted: AcceptedOffsets,
    id: ChunkIdentity,
    spans: Uint32Array,
  ): Promise<number> {
    const novelty = accepted.novelty(id, chunk.entries, entries);
    if (novelty.kind === 'replay') {
      this.options.dedupeMetrics?.replaysDropped('ingest', novelty.entries);
      return 0;
    }
    let kept: number;
    if (novelty.kind === 'partly') {
      this.options.dedupeMetrics?.replaysDropped('ingest', novelty.dropped);
      const oversized = oversizedLines === 0 ? 0 : scanEntryBatch(novelty.data, { maxLineBytes: this.options.limits.maxLineBytes }).oversizedLines;
      kept = await this.store(state, chunk, ticket, novelty.data, novelty.entries, oversized);
    } else kept = await this.store(state, chunk, ticket, chunk.entries, entries, oversizedLines, spans);
    accepted.add(id);
    return kept;
  }

  /**
   * Makes the chunk durable; resolves with the entries now in the spool. Lines over the line limit
   * (from a collector that does not know the limit, or a hostile one) go to the dead-letter file
   * first, so the chunk's other lines are accepted and none is lost: after a crash between the two
   * writes the unacked chunk is resent, and the dead letters are duplicated, never missing.
   * `chunk` is the chunk as received (what its resend will hold); `data` what of it is stored, with
   * `spans` when they are data's (the admission scan's, for the whole chunk).
   */
  private async store(state: StreamState, chunk: ChunkMessage, ticket: ChunkTicket, data: Buffer, entries: number, oversizedLines: number, spans?: Uint32Array): Promise<number> {
    if (oversizedLines === 0) {
      this.checkRoom(state, chunk, ticket, data.length);
      await this.append(state, chunk, ticket, data, entries, spans);
      return entries;
    }
    const max = this.options.limits.maxLineBytes;
    const parts = partitionOversized(data, max);
    if (parts.kept !== undefined) this.checkRoom(state, chunk, ticket, parts.kept.length);
    const reason = `line longer than AGGREGATOR_MAX_LINE_BYTES (${max} bytes)`;
    this.options.logger?.warn({ stream: state.id, sequence: chunk.sequence, lines: parts.oversizedCount, maxLineBytes: max }, 'lines over the line limit: kept in the dead-letter file, the rest of the chunk accepted');
    if (parts.oversized !== undefined) await this.options.deadLetters.add(parts.oversized, parts.oversizedCount, reason);
    this.options.metrics?.entriesOversized.inc(parts.oversizedCount);
    if (parts.kept !== undefined) {
      this.checkRoom(state, chunk, ticket, parts.kept.length);
      await this.append(state, chunk, ticket, parts.kept, parts.keptCount);
    }
    return parts.keptCount;
  }

  /**
   * Synchronously before an append: throws when the chunk is behind a refused one of its stream, or
   * when the spool would refuse it (then the stream's later chunks wait for its resend).
   */
  private checkRoom(state: StreamState, chunk: ChunkMessage, ticket: ChunkTicket, bytes: number): void {
    if (ticket.behind) throw new BehindRefused();
    const refused = this.options.sink.refusal(bytes);
    if (refused === undefined) return;
    if (refused instanceof McError && refused.code === ErrorCode.SpoolFull) state.order.refuse(ticket, chunk.sequence, chunk.entries);
    throw refused;
  }

  /** The append; a refusal for lack of room found only while writing (a full disk) holds the stream too. */
  private async append(state: StreamState, chunk: ChunkMessage, ticket: ChunkTicket, data: Buffer, entries: number, spans?: Uint32Array): Promise<void> {
    try {
      await this.options.sink.append(data, entries, spans);
    } catch (err) {
      if (err instanceof McError && err.code === ErrorCode.SpoolFull) state.order.refuse(ticket, chunk.sequence, chunk.entries);
      throw err;
    }
  }

  private behindMessage(state: StreamState): string {
    return `spool is full: chunk ${state.order.waitingFor ?? '?'} of this stream was refused; resend it first, then the chunks after it`;
  }

  private spoolFull(chunk: ChunkMessage, entries: number, retryAfterMs: number, message = 'spool is full; resend later'): AckMessage {
    return this.refuse(chunk, entries, 'spool_full', AckCode.RESOURCE_EXHAUSTED, message, retryAfterMs);
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
        s.budget.remove();
        this.streams.delete(s);
        this.options.metrics?.streamsOpen.dec();
        s.call.end();
      }
    }
  }
}

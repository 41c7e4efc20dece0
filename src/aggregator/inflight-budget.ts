import type { Clock, TimerHandle } from '../util/clock.js';

/**
 * What the budget lets a stream do: read its next message. grpc-js asks HTTP/2 for a call's next
 * message only when the call is read (startRead); until then HTTP/2 flow control holds its sender.
 */
export interface MessageReader {
  read(): void;
}

export interface InflightBudgetOptions {
  /** AGGREGATOR_MAX_INFLIGHT_BYTES: chunk bytes received and not yet acknowledged, all streams together. */
  readonly totalBytes: number;
  /** Most bytes one stream may hold however few streams there are. */
  readonly maxStreamBytes: number;
  /** Most chunks one stream may hold. */
  readonly maxStreamChunks: number;
  /** What a stream's next message is expected to take before any chunk was seen (default maxStreamBytes / 2). */
  readonly firstChunkBytes?: number;
  /**
   * A stream allowed to read that has sent nothing for this long (an idle collector) no longer holds
   * room for its next message (default 1000 ms): idle streams must not hold the busy ones back.
   */
  readonly idleGrantMs?: number;
  /** For idleGrantMs (the aggregator's injected clock). */
  readonly clock: Pick<Clock, 'now' | 'setTimeout' | 'clearTimeout'>;
  /** Called after every change (for gauges). */
  readonly onChange?: (bytes: number, waitingStreams: number) => void;
}

/** One stream's account in the budget. */
export class StreamBudget {
  bytes = 0;
  chunks = 0;
  /** Size of its last chunk: what its next one is expected to take. */
  lastChunk = 0;
  /** Allowed to read its next message, which has not arrived yet. */
  reading = false;
  /** Asked again before that message was taken (Readable may ask before it hands a message on). */
  askedAgain = false;
  /** Room held for that message (0 once it counts as idle). */
  granted = 0;
  grantedAt = 0;
  removed = false;

  constructor(
    private readonly owner: InflightBudget,
    readonly reader: MessageReader,
  ) {}

  /**
   * It wants its next message: read at once (true) when the budget has room, else when it has. Asked
   * while the message it may read has not arrived, it is a request for the one after it.
   */
  request(): boolean {
    return this.owner.request(this);
  }

  /** A chunk of `bytes` arrived. */
  take(bytes: number): void {
    this.owner.take(this, bytes);
  }

  /** The chunk's ack is written: its room goes to the streams waiting, oldest first. */
  release(bytes: number): void {
    this.owner.release(this, bytes);
  }

  /** The stream is gone: its share goes to the others (its chunks still in flight are released as usual). */
  remove(): void {
    this.owner.remove(this);
  }
}

/**
 * One in-flight budget shared by every stream, so the aggregator's memory is bounded in total, not
 * per stream (RSS flat in the number of collectors). A stream reads its next message only when the
 * budget lets it: what counts is the chunk bytes received and not yet acknowledged, plus the room
 * held for each message a stream was allowed to read and has not sent yet (taken to be as large as
 * its last chunk). Nothing is read ahead: a stream that is not allowed to read holds nothing but its
 * chunks awaiting their acks (grpc-js reads no further, HTTP/2 flow control stops its sender).
 *
 * Each stream may hold its fair share (`totalBytes / streams`, at most `maxStreamBytes`, and
 * `maxStreamChunks` chunks), its next message included; a stream with nothing in flight may always
 * read one. Streams waiting for room are let read oldest first, so none starves; a stream waiting on
 * its own share does not hold back the others. With nothing in flight at all, the oldest waiting
 * stream reads whatever the budget says; and room held for a stream that has sent nothing for
 * `idleGrantMs` is given back (an idle collector must not hold the busy ones back). So the memory
 * held is about `totalBytes`, more only by chunks larger than expected and by idle streams that all
 * send at once (one chunk each).
 */
export class InflightBudget {
  private readonly streams = new Set<StreamBudget>();
  /** Insertion order is request order: let read oldest first. */
  private readonly waiting = new Set<StreamBudget>();
  /** Streams holding room for their next message. */
  private readonly holding = new Set<StreamBudget>();
  private total = 0;
  /** Room held for the messages streams were allowed to read. */
  private granted = 0;
  /** The last chunk size of any stream: what a stream that has not sent yet is expected to send. */
  private typicalChunk = 0;
  private readonly idleGrantMs: number;
  private readonly firstChunkBytes: number;
  /** Armed while streams wait and room is held: it gives back the room of streams gone idle. */
  private idleTimer: TimerHandle | undefined;

  constructor(private readonly o: InflightBudgetOptions) {
    this.idleGrantMs = o.idleGrantMs ?? 1000;
    this.firstChunkBytes = o.firstChunkBytes ?? Math.max(1, Math.floor(o.maxStreamBytes / 2));
  }

  /** Chunk bytes received and not yet acknowledged. */
  get bytes(): number {
    return this.total;
  }

  /** Room held for messages streams may read now. */
  get grantedBytes(): number {
    return this.granted;
  }

  /** Streams that want to read and wait for room. */
  get waitingStreams(): number {
    return this.waiting.size;
  }

  add(reader: MessageReader): StreamBudget {
    const s = new StreamBudget(this, reader);
    this.streams.add(s);
    return s;
  }

  /** Bytes one stream may hold now (its chunks in flight and its next one). */
  shareBytes(): number {
    return Math.min(this.o.maxStreamBytes, this.o.totalBytes, Math.floor(this.o.totalBytes / Math.max(1, this.streams.size)));
  }

  request(s: StreamBudget): boolean {
    if (s.removed) return false;
    if (s.reading) {
      // Its message is on the way: this request is for the one after it, queued once that is taken.
      s.askedAgain = true;
      return false;
    }
    this.waiting.add(s);
    this.letRead();
    this.changed();
    return s.reading;
  }

  take(s: StreamBudget, bytes: number): void {
    this.unhold(s);
    s.reading = false;
    if (s.askedAgain && !s.removed) this.waiting.add(s);
    s.askedAgain = false;
    s.bytes += bytes;
    s.chunks++;
    s.lastChunk = bytes;
    this.total += bytes;
    this.typicalChunk = bytes;
    // The message may be smaller than the room held for it.
    this.letRead();
    this.changed();
  }

  release(s: StreamBudget, bytes: number): void {
    s.bytes -= bytes;
    s.chunks--;
    this.total -= bytes;
    this.letRead();
    this.changed();
  }

  remove(s: StreamBudget): void {
    if (s.removed) return;
    s.removed = true;
    this.streams.delete(s);
    this.waiting.delete(s);
    this.unhold(s);
    this.letRead();
    this.changed();
  }

  private unhold(s: StreamBudget): void {
    this.granted -= s.granted;
    s.granted = 0;
    this.holding.delete(s);
  }

  private changed(): void {
    this.o.onChange?.(this.total, this.waiting.size);
  }

  private expected(s: StreamBudget): number {
    if (s.lastChunk > 0) return s.lastChunk;
    return this.typicalChunk > 0 ? this.typicalChunk : this.firstChunkBytes;
  }

  /** Lets waiting streams read, oldest first, as far as the budget and their shares allow. */
  private letRead(): void {
    if (this.waiting.size === 0) return;
    this.forgetIdle();
    const share = this.shareBytes();
    const go: StreamBudget[] = [];
    for (const s of this.waiting) {
      const expected = this.expected(s);
      // Over its own share: it waits for its acks, the others may go on.
      if (s.chunks >= this.o.maxStreamChunks || (s.bytes > 0 && s.bytes + expected > share)) continue;
      // With nothing in flight and no room held, one stream goes on whatever the budget says.
      if (this.total + this.granted > 0 && this.total + this.granted + expected > this.o.totalBytes) break;
      this.waiting.delete(s);
      s.reading = true;
      s.granted = expected;
      s.grantedAt = this.o.clock.now();
      this.granted += expected;
      this.holding.add(s);
      go.push(s);
    }
    this.armIdleTimer();
    // After the books are done: a read may hand a message over at once (and come back here).
    for (const s of go) s.reader.read();
  }

  /** Room held for streams that have sent nothing for idleGrantMs goes back to the budget. */
  private forgetIdle(): void {
    if (this.holding.size === 0) return;
    const now = this.o.clock.now();
    for (const s of this.holding) {
      if (now - s.grantedAt < this.idleGrantMs) break; // held in grant order: the rest are younger
      this.unhold(s);
    }
  }

  /** While streams wait and room is held, looks again when the oldest room held turns idle (no ack may come). */
  private armIdleTimer(): void {
    if (this.idleTimer !== undefined || this.waiting.size === 0) return;
    const oldest = this.holding.values().next().value as StreamBudget | undefined;
    if (oldest === undefined) return;
    const delay = Math.max(0, oldest.grantedAt + this.idleGrantMs - this.o.clock.now());
    this.idleTimer = this.o.clock.setTimeout(() => {
      this.idleTimer = undefined;
      this.letRead();
      this.changed();
    }, delay);
    this.idleTimer.unref();
  }
}

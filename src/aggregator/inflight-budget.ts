/** What the budget pauses: a stream's reading (grpc-js: HTTP/2 flow control stops its sender). */
export interface Pausable {
  pause(): void;
  resume(): void;
}

export interface InflightBudgetOptions {
  /** AGGREGATOR_MAX_INFLIGHT_BYTES: chunk bytes received and not yet acknowledged, all streams together. */
  readonly totalBytes: number;
  /** Most bytes one stream may hold however few streams there are. */
  readonly maxStreamBytes: number;
  /** Most chunks one stream may hold. */
  readonly maxStreamChunks: number;
  /** Called after every change (for gauges). */
  readonly onChange?: (bytes: number, pausedStreams: number) => void;
}

/** One stream's account in the budget. */
export class StreamBudget {
  bytes = 0;
  chunks = 0;
  /** Size of its last chunk: what grpc-js is taken to hold for it while it is paused (one message read ahead). */
  lastChunk = 0;
  paused = false;
  /** Resumed by the budget and not yet sent since: the chunk expected (it keeps its turn when the budget is spent meanwhile). */
  granted = 0;
  removed = false;

  constructor(
    private readonly owner: InflightBudget,
    readonly stream: Pausable,
  ) {}

  /** A chunk of `bytes` was received: pauses the stream when it holds its share (or the total is spent). */
  take(bytes: number): void {
    this.owner.take(this, bytes);
  }

  /** The chunk's ack is written: resumes paused streams, oldest first, as the budget allows. */
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
 * per stream (RSS flat in the number of collectors). What counts is the chunk bytes received and not
 * yet acknowledged, plus, per paused stream, the message grpc-js reads ahead of a paused call (taken
 * to be as large as the stream's last chunk). Each stream may hold its fair share (`totalBytes /
 * streams`, at most `maxStreamBytes`, and `maxStreamChunks` chunks), its read-ahead included; past
 * it its reading is paused (HTTP/2 flow control stops its sender), and while the total is spent
 * every stream is. Paused streams are resumed oldest first as far as the budget allows, so none
 * starves; a stream resumes once it holds at most half its share. Whatever the number of streams, a
 * quarter of the budget always goes to chunks in flight (many paused streams' read-ahead alone may
 * pass the budget: the spool's group commits must not shrink to one chunk); so the memory held is
 * about `totalBytes`, or one chunk per paused stream when that is more.
 */
export class InflightBudget {
  private readonly streams = new Set<StreamBudget>();
  /** Insertion order is pause order: resumed oldest first. */
  private readonly pausedSet = new Set<StreamBudget>();
  private total = 0;
  /** The read-ahead of the paused streams. */
  private readAhead = 0;
  /** The last chunk size of any stream: what a stream that has not sent yet is expected to send. */
  private typicalChunk = 0;
  /** The chunks expected from resumed streams that have not sent yet. */
  private granted = 0;

  constructor(private readonly o: InflightBudgetOptions) {}

  /** Chunk bytes received and not yet acknowledged. */
  get bytes(): number {
    return this.total;
  }

  get pausedStreams(): number {
    return this.pausedSet.size;
  }

  add(stream: Pausable): StreamBudget {
    const s = new StreamBudget(this, stream);
    this.streams.add(s);
    return s;
  }

  /** Bytes one stream may hold now (its chunks in flight and the one read ahead). */
  shareBytes(): number {
    return Math.min(this.o.maxStreamBytes, this.o.totalBytes, Math.floor(this.o.totalBytes / Math.max(1, this.streams.size)));
  }

  take(s: StreamBudget, bytes: number): void {
    s.bytes += bytes;
    s.chunks++;
    this.granted -= s.granted;
    s.granted = 0;
    this.total += bytes;
    if (s.paused) this.readAhead += bytes - s.lastChunk;
    s.lastChunk = bytes;
    this.typicalChunk = bytes;
    if (!s.paused && !s.removed && (s.chunks >= this.o.maxStreamChunks || s.bytes + s.lastChunk > this.shareBytes())) this.pause(s);
    // Spent: every stream waits its turn (those that have not sent yet too), but one just granted a turn.
    if (this.pausedSet.size < this.streams.size && this.spent(0)) {
      for (const o of this.streams) if (!o.paused && o.granted === 0) this.pause(o);
    }
    this.changed();
  }

  release(s: StreamBudget, bytes: number): void {
    s.bytes -= bytes;
    s.chunks--;
    this.total -= bytes;
    this.resumeEligible();
    this.changed();
  }

  remove(s: StreamBudget): void {
    if (s.removed) return;
    s.removed = true;
    this.streams.delete(s);
    this.granted -= s.granted;
    s.granted = 0;
    if (this.pausedSet.delete(s)) {
      s.paused = false;
      this.readAhead -= s.lastChunk;
    }
    this.resumeEligible();
    this.changed();
  }

  private pause(s: StreamBudget): void {
    s.paused = true;
    this.pausedSet.add(s);
    this.readAhead += s.lastChunk;
    s.stream.pause();
  }

  private changed(): void {
    this.o.onChange?.(this.total, this.pausedSet.size);
  }

  /**
   * Whether the budget is spent once `extra` more bytes come in: chunks in flight, read-ahead and the
   * chunks expected from resumed streams pass it, and chunks in flight hold at least the quarter always
   * granted to them (a resumed stream that stays idle must not hold the others back for ever).
   */
  private spent(extra: number): boolean {
    return this.total + this.granted + this.readAhead + extra > this.o.totalBytes && this.total + extra >= this.o.totalBytes / 4;
  }

  private resumeEligible(): void {
    if (this.pausedSet.size === 0) return;
    const share = this.shareBytes();
    let extra = 0;
    for (const s of this.pausedSet) {
      if (s.bytes > share / 2 || s.chunks > this.o.maxStreamChunks / 2) continue;
      // A resumed stream hands on the chunk grpc-js holds for it and reads on: one chunk expected.
      const expected = Math.max(s.lastChunk, this.typicalChunk, 1);
      // With nothing in flight at all, the oldest eligible stream goes on whatever the budget says.
      if (!(this.total === 0 && extra === 0) && this.spent(extra + expected)) break;
      extra += expected;
      this.granted += expected;
      s.granted = expected;
      s.paused = false;
      this.readAhead -= s.lastChunk;
      this.pausedSet.delete(s);
      s.stream.resume();
    }
  }
}

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
  paused = false;
  removed = false;

  constructor(
    private readonly owner: InflightBudget,
    readonly stream: Pausable,
  ) {}

  /** A chunk of `bytes` was received: pauses the stream when it holds its share (or the total is spent). */
  take(bytes: number): void {
    this.owner.take(this, bytes);
  }

  /** The chunk's ack is written: resumes streams that are under their share again. */
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
 * per stream (RSS flat in the number of collectors). Each stream may hold its fair share
 * (`totalBytes / streams`, at most `maxStreamBytes`, and `maxStreamChunks` chunks); past it, or while
 * the total is spent, its reading is paused. A stream with nothing in flight is never paused, so each
 * stream always gets at least one chunk through (no stream starves, and a chunk larger than a share
 * still passes); the total may therefore exceed `totalBytes` by about one chunk per stream. A paused
 * stream resumes once it holds nothing, or at most half its share while the total is under the budget
 * (so it is not paused and resumed on every ack).
 */
export class InflightBudget {
  private readonly streams = new Set<StreamBudget>();
  private readonly pausedSet = new Set<StreamBudget>();
  private total = 0;

  constructor(private readonly o: InflightBudgetOptions) {}

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

  /** Bytes one stream may hold now. */
  shareBytes(): number {
    return Math.min(this.o.maxStreamBytes, Math.floor(this.o.totalBytes / Math.max(1, this.streams.size)));
  }

  take(s: StreamBudget, bytes: number): void {
    s.bytes += bytes;
    s.chunks++;
    this.total += bytes;
    if (!s.paused && !s.removed && this.overShare(s)) {
      s.paused = true;
      this.pausedSet.add(s);
      s.stream.pause();
    }
    this.o.onChange?.(this.total, this.pausedSet.size);
  }

  release(s: StreamBudget, bytes: number): void {
    s.bytes -= bytes;
    s.chunks--;
    this.total -= bytes;
    this.resumeEligible();
    this.o.onChange?.(this.total, this.pausedSet.size);
  }

  remove(s: StreamBudget): void {
    if (s.removed) return;
    s.removed = true;
    this.streams.delete(s);
    if (this.pausedSet.delete(s)) s.paused = false;
    this.resumeEligible();
    this.o.onChange?.(this.total, this.pausedSet.size);
  }

  private overShare(s: StreamBudget): boolean {
    if (s.chunks >= this.o.maxStreamChunks || s.bytes >= this.shareBytes()) return true;
    return this.total >= this.o.totalBytes && s.bytes > 0;
  }

  private resumeEligible(): void {
    if (this.pausedSet.size === 0) return;
    const share = this.shareBytes();
    const spent = this.total >= this.o.totalBytes;
    for (const s of this.pausedSet) {
      if (s.bytes > 0 && (spent || s.bytes > share / 2 || s.chunks > this.o.maxStreamChunks / 2)) continue;
      s.paused = false;
      this.pausedSet.delete(s);
      s.stream.resume();
    }
  }
}

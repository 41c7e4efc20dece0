import { chunkMemory } from './chunk-builder.js';
import type { SealedChunk } from './chunk-builder.js';

/**
 * The channel between the chunk builder (the source: a chunk is sealed in the middle of a cut, when
 * the next line would not fit) and the ship client (the sink), as Vector puts a bounded buffer
 * between a source and a sink. It never drops: a sealed chunk holds lines whose file offsets are
 * already behind the read offset, so refusing one would lose them. Its bound is back pressure
 * instead: while it holds `maxBytes` or more, `full` says so and the reader reads nothing (the
 * overshoot is at most what one read seals). It counts what it holds, what passed through it, and
 * its high-water mark.
 */
export class ChunkQueue {
  private items: SealedChunk[] = [];
  private head = 0;
  private bytes = 0;
  private listener: (() => void) | undefined;
  private pushed = 0;
  private peak = 0;

  constructor(readonly maxBytes: number) {
    if (!(maxBytes > 0)) throw new RangeError(`a chunk queue needs room: maxBytes ${maxBytes}`);
  }

  /** Chunks held. */
  get heldChunks(): number {
    return this.items.length - this.head;
  }

  /** Bytes held (what the chunks' buffers take: `chunkMemory`). */
  get heldBytes(): number {
    return this.bytes;
  }

  /** Chunks pushed since it was made. */
  get pushedChunks(): number {
    return this.pushed;
  }

  /** Most bytes it ever held at once. */
  get peakBytes(): number {
    return this.peak;
  }

  /** At or past its bound: the reader waits (back pressure; nothing is ever dropped). */
  get full(): boolean {
    return this.bytes >= this.maxBytes;
  }

  /** Told after every push (the drain). */
  onPush(listener: () => void): void {
    this.listener = listener;
  }

  /** Always accepted, also past the bound (see the class comment). */
  push(chunk: SealedChunk): void {
    this.items.push(chunk);
    this.bytes += chunkMemory(chunk);
    this.pushed++;
    if (this.bytes > this.peak) this.peak = this.bytes;
    this.listener?.();
  }

  /** The oldest chunk held, removed; undefined when empty. */
  shift(): SealedChunk | undefined {
    if (this.head === this.items.length) return undefined;
    const chunk = this.items[this.head] as SealedChunk;
    this.items[this.head] = undefined as unknown as SealedChunk;
    this.head++;
    this.bytes -= chunkMemory(chunk);
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return chunk;
  }
}

/** Where a drain hands chunks: the ship client (which keeps each until it is acknowledged). */
export interface ChunkSink {
  enqueue(chunk: SealedChunk): void;
}

/**
 * Moves chunks from the queue to the sink, in order, outside the cut that sealed them: a push
 * schedules one drain (a microtask by default), so the sink's work (encoding, a gRPC write) never runs
 * inside the line cutter's callback. `flush()` drains at once (at shutdown, before waiting for acks).
 */
export class ChunkDrain {
  private scheduled = false;

  constructor(
    private readonly queue: ChunkQueue,
    private readonly sink: ChunkSink,
    private readonly schedule: (task: () => void) => void = queueMicrotask,
    private readonly onMoved?: (chunk: SealedChunk) => void,
  ) {
    queue.onPush(() => this.request());
  }

  private request(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => this.flush());
  }

  /** Hands every held chunk to the sink now, oldest first. */
  flush(): void {
    this.scheduled = false;
    for (let chunk = this.queue.shift(); chunk !== undefined; chunk = this.queue.shift()) {
      this.sink.enqueue(chunk);
      this.onMoved?.(chunk);
    }
  }
}

import { RECORD_HEADER_BYTES } from './segment-format.js';
import type { RecordPosition } from './spool-types.js';

/** A record this process appended, as it handed it to the spool. */
export interface RecentRecord {
  readonly segment: number;
  readonly offset: number;
  /** Where the record after it starts, in the same segment. */
  readonly next: number;
  readonly data: Buffer;
  readonly entryCount: number;
  /** Where its lines lie (lineSpans of data), when the appender had them. */
  readonly spans: Uint32Array | undefined;
}

/**
 * The records this process appended most recently and that the reader has not passed yet, up to
 * `maxBytes` of payload (the oldest are let go first), so that a reader close behind the appends takes
 * them from memory: no read of the file, no checksum of bytes this process wrote itself and made
 * durable a moment ago. Records read after a restart, or let go here, are read from the file and
 * verified as before. Positions are unique for the spool's life (segment numbers only grow; a segment
 * is never appended to again once rolled or truncated), and records are added in append order.
 */
export class RecentRecords {
  private readonly queue: Array<RecentRecord | undefined> = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** A record just made durable at `position`. The caller must not change `data` afterwards. */
  add(position: RecordPosition, data: Buffer, entryCount: number, spans?: Uint32Array): void {
    if (data.length > this.maxBytes) return;
    this.queue.push({ segment: position.segment, offset: position.offset, next: position.offset + RECORD_HEADER_BYTES + data.length, data, entryCount, spans });
    this.bytes += data.length;
    while (this.bytes > this.maxBytes) this.dropHead();
  }

  /**
   * The record at (segment, offset), if held; it and every record before it are let go (the reader
   * moves only forward).
   */
  take(segment: number, offset: number): RecentRecord | undefined {
    for (;;) {
      const r = this.queue[this.head];
      if (r === undefined) return undefined;
      if (r.segment > segment || (r.segment === segment && r.offset > offset)) return undefined;
      this.dropHead();
      if (r.segment === segment && r.offset === offset) return r;
    }
  }

  /** Payload bytes held. */
  get heldBytes(): number {
    return this.bytes;
  }

  private dropHead(): void {
    const r = this.queue[this.head];
    if (r === undefined) return;
    this.queue[this.head] = undefined;
    this.head++;
    this.bytes -= r.data.length;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }
}

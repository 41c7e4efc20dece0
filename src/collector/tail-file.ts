import type { Clock } from '../util/clock.js';
import { LineTime } from '../wire/line-time.js';
import type { FileCursor } from './file-cursor.js';
import type { OffsetEvidence, PrefixHash } from './file-identity.js';
import { HASH_WINDOW, extendPrefix, hashBefore } from './file-identity.js';
import { LineCutter } from './line-cutter.js';
import type { EntryOut, LineCutterOptions } from './line-cutter.js';
import { nodeTailIo, readFully } from './tail-io.js';
import type { TailIo } from './tail-io.js';

/** Where the tailer puts what it cuts: the open chunk (see ChunkBuilder). */
export interface TailSink {
  readonly full: boolean;
  /** Would this line fit in the open chunk? When not, the chunk is sealed before the line is added. */
  fits?(cursor: FileCursor, dataLen: number, offset: number): boolean;
  /** `time`: time_unix_nano of the line (one per read buffer). */
  addLine(cursor: FileCursor, src: Buffer, start: number, end: number, offset: number, time: LineTime, flags: number): void;
  noteRange(cursor: FileCursor, endOffset: number, evidence: OffsetEvidence, lines: number, bytes: number): void;
  seal(): void;
}

/** Why the path stopped naming this file. */
export type DetachKind = 'rename' | 'delete';

export interface TailerOptions extends LineCutterOptions {
  readonly multilineTimeoutMs: number;
  readonly idleFlushMs: number;
  /** How long a rotated-away or deleted file is read after its last growth before it is finished. */
  readonly rotateWaitMs: number;
  /** Told once per detachment (for the rotation metric, and to look at the path again). */
  readonly onDetach?: (tailer: FileTailer, kind: DetachKind) => void;
}

/**
 * `data`: entries were cut; `idle`: nothing new; `truncated`: the content before the read offset is
 * gone (the caller starts a new generation); `finished`: a rotated-away file is read to its end.
 */
export type StepStatus = 'data' | 'idle' | 'truncated' | 'finished';

/** What one step did: its status, and the entries, line bytes and long-line pieces it cut. */
export interface StepResult {
  readonly status: StepStatus;
  /** Entries cut (counted once per noted range, so once per buffer or chunk). */
  readonly lines: number;
  /** Line bytes of those entries. */
  readonly bytes: number;
  /** Pieces of over-long lines cut. */
  readonly splitPieces: number;
}

/**
 * Tails one open file: reads by offset into the shared read buffer, cuts entries into the sink, and
 * notices truncation (the bytes before the read offset changed or vanished), rotation (the path now
 * names another file, or nothing) and the end of a rotated-away file. Every read starts HASH_WINDOW
 * bytes before the read offset and compares them with what was there, and compares the file's first
 * bytes with the fingerprinted ones, so a copytruncate or an in-place rewrite is caught even when the
 * file has regrown past the offset, with lines of the same lengths, before the next look. A file
 * found shorter than it was seen is truncated too. `check()` does the same without reading on, for
 * files whose reading is paused (waiting for acknowledgements). All its I/O goes through `io`.
 */
export class FileTailer implements EntryOut {
  private stateNow: 'active' | 'draining' = 'active';
  private detached: DetachKind | undefined;
  private pathNow: string;
  private cursorNow: FileCursor;
  private end: number;
  private lastGrowthMs: number;
  private cutter: LineCutter;
  private view: Buffer = Buffer.alloc(0);
  private viewOffset = 0;
  private time = LineTime.fromMillis(0);
  private timeMs = 0;
  private sink: TailSink | undefined;
  private linesSinceNote = 0;
  private bytesSinceNote = 0;
  /** Entries and line bytes noted during this step. */
  private stepLines = 0;
  private stepBytes = 0;
  /** `next` of the last entry of this step: where the noted range ends when the chunk is sealed early. */
  private lastNext = 0;
  /** Prefix crc up to view index `prefixIndex` (rolled forward at each noted range). */
  private prefix: PrefixHash | undefined;
  private prefixIndex = 0;

  constructor(
    readonly fd: number,
    cursor: FileCursor,
    path: string,
    private readonly options: TailerOptions,
    private readonly clock: Clock,
    private readonly io: TailIo = nodeTailIo,
  ) {
    this.cursorNow = cursor;
    this.pathNow = path;
    this.cutter = new LineCutter(options);
    this.end = cursor.readOffset;
    this.lastGrowthMs = clock.now();
  }

  /** The generation being read. */
  get cursor(): FileCursor {
    return this.cursorNow;
  }

  /** The path this file was found under (the one it is watched at while active). */
  get path(): string {
    return this.pathNow;
  }

  /** `draining`: the path no longer names this file; read it to its end, then finish. */
  get state(): 'active' | 'draining' {
    return this.stateNow;
  }

  get detachKind(): DetachKind | undefined {
    return this.detached;
  }

  /** Highest end of file seen; bytes behind = knownEnd - readOffset. */
  get knownEnd(): number {
    return this.end;
  }

  /**
   * When a look at this idle file next does something a look now would not: send a pending multiline
   * entry or an unterminated last line (bytes past the read offset are held), or finish it (rotated
   * away and drained); undefined when only growth would change anything. The read loop looks by then
   * however far its idle backoff has gone.
   */
  nextDeadlineMs(now: number): number | undefined {
    const t = this.lastGrowthMs;
    const due: number[] = [];
    if (this.stateNow === 'draining') due.push(t + this.options.rotateWaitMs);
    if (this.end > this.cursorNow.readOffset) due.push(t + this.options.multilineTimeoutMs, t + this.options.idleFlushMs);
    let next: number | undefined;
    for (const d of due) if (d > now && (next === undefined || d < next)) next = d;
    return next;
  }

  /** Starts a new generation on the same open file (after a truncation). */
  restart(cursor: FileCursor): void {
    this.cursorNow = cursor;
    this.cutter = new LineCutter(this.options);
    this.end = cursor.readOffset;
    this.lastGrowthMs = this.clock.now();
  }

  /**
   * One read and cut. `buf` is the caller's read buffer, larger than maxLineBytes + HASH_WINDOW;
   * `limit` (more than HASH_WINDOW) caps the read (the in-flight budget). A line that does not fit
   * in `limit` is read again with the whole buffer.
   */
  async step(sink: TailSink, buf: Buffer, limit = buf.length): Promise<StepResult> {
    this.stepLines = 0;
    this.stepBytes = 0;
    const c = this.cursorNow;
    const k = c.tailLength;
    const bufStart = c.readOffset - k;
    const n = await this.io.read(this.fd, buf, 0, limit, bufStart);
    if (k > 0 && (n < k || !c.tailMatches(buf.subarray(0, k)))) return this.result('truncated', 0);
    const atEof = n < limit;
    // Shorter than it was seen: truncated (and perhaps regrown, but not as far as before).
    if (atEof && bufStart + n < c.seenSize) return this.result('truncated', 0);
    // The head is compared on every read only while the read covers it; farther on, the window is
    // (a head read per step made copytruncate rotations under load misfire: see the report of issue 8).
    if (bufStart === 0 && !(await this.headIntact(buf, bufStart, n))) return this.result('truncated', 0);
    const now = this.clock.now();
    if (bufStart + n > this.end) {
      this.end = bufStart + n;
      this.lastGrowthMs = now;
    }
    c.noteSize(bufStart + n);
    c.extendHead(buf, bufStart, n);
    const idleMs = now - this.lastGrowthMs;
    const finishing = this.stateNow === 'draining' && idleMs >= this.options.rotateWaitMs;
    const flushEntry = atEof && (finishing || idleMs >= this.options.multilineTimeoutMs);
    const flushPartial = atEof && (finishing || idleMs >= this.options.idleFlushMs);
    let consumed = k;
    let split = 0;
    if (n > k) {
      this.view = buf.subarray(0, n);
      this.viewOffset = bufStart;
      // One timestamp per read buffer, not per line (nor per buffer within the same millisecond).
      const ms = Math.floor(now);
      if (ms !== this.timeMs) {
        this.timeMs = ms;
        this.time = LineTime.fromMillis(ms);
      }
      this.sink = sink;
      this.prefix = c.readPrefix;
      this.prefixIndex = k;
      const pieces = this.cutter.splitPieces;
      consumed = this.cutter.cut(this.view, k, this, flushEntry, flushPartial);
      // Nothing cut from a capped read: the line (or multiline entry) is longer than the cap.
      if (consumed === k && !atEof && limit < buf.length) return this.step(sink, buf);
      if (consumed === k && !atEof) {
        // A full buffer and nothing consumed: a pending multiline entry and the unterminated line after
        // it fill the whole read. Together they exceed maxLineBytes (the buffer holds more), so that
        // line can never join the entry: the entry is complete. Holding it would re-read the same
        // bytes forever and the file would never move again.
        consumed = this.cutter.cut(this.view, k, this, true, false);
      }
      split = this.cutter.splitPieces - pieces;
      if (this.linesSinceNote > 0) this.note(consumed);
      this.sink = undefined;
      if (consumed > k) {
        c.advance(this.view, bufStart, consumed, extendPrefix(this.prefix, this.view, this.prefixIndex, consumed, bufStart + this.prefixIndex));
        return this.result('data', split);
      }
    }
    if (finishing && consumed === n) return this.result('finished', split);
    if (this.stateNow === 'active') await this.checkPath();
    return this.result('idle', split);
  }

  private result(status: StepStatus, splitPieces: number): StepResult {
    return { status, lines: this.stepLines, bytes: this.stepBytes, splitPieces };
  }

  entry(start: number, end: number, next: number, flags: number): void {
    const sink = this.sink as TailSink;
    if (sink.fits !== undefined && !sink.fits(this.cursorNow, end - start, this.viewOffset + start)) {
      if (this.linesSinceNote > 0) this.note(this.lastNext);
      sink.seal();
    }
    this.lastNext = next;
    sink.addLine(this.cursorNow, this.view, start, end, this.viewOffset + start, this.time, flags);
    this.linesSinceNote++;
    this.bytesSinceNote += end - start;
    if (sink.full) {
      this.note(next);
      sink.seal();
    }
  }

  private note(next: number): void {
    const endOffset = this.viewOffset + next;
    this.prefix = extendPrefix(this.prefix, this.view, this.prefixIndex, next, this.viewOffset + this.prefixIndex);
    this.prefixIndex = next;
    const evidence = { hash: hashBefore(this.view, next), hashLength: Math.min(HASH_WINDOW, endOffset), prefix: this.prefix };
    (this.sink as TailSink).noteRange(this.cursorNow, endOffset, evidence, this.linesSinceNote, this.bytesSinceNote);
    this.stepLines += this.linesSinceNote;
    this.stepBytes += this.bytesSinceNote;
    this.linesSinceNote = 0;
    this.bytesSinceNote = 0;
  }

  /**
   * Do the file's first bytes (as far as they were consumed) still match the fingerprinted ones? `buf`
   * holds `n` bytes of the file from `bufStart`; the head is read apart when the buffer does not hold it.
   */
  private async headIntact(buf: Buffer, bufStart: number, n: number): Promise<boolean> {
    const known = this.cursorNow.headBytes;
    const len = Math.min(known?.length ?? 0, this.cursorNow.readOffset);
    if (known === undefined || len === 0) return true;
    const head = bufStart === 0 && n >= len ? buf.subarray(0, len) : await readFully(this.io, this.fd, len, 0);
    return head.length === len && head.equals(known.subarray(0, len));
  }

  /**
   * The truncation checks of a read, without reading on (reading is paused while acknowledgements are
   * awaited, but a truncation must still be seen: the rotated copy is found while it is fresh, and the
   * new generation is not mistaken for the old one when reading resumes).
   */
  async check(): Promise<'truncated' | 'ok'> {
    const c = this.cursorNow;
    const size = (await this.io.fstat(this.fd)).size;
    if (size < c.seenSize || size < c.readOffset) return 'truncated';
    c.noteSize(size);
    const k = c.tailLength;
    if (k > 0) {
      const tail = await readFully(this.io, this.fd, k, c.readOffset - k);
      if (tail.length < k || !c.tailMatches(tail)) return 'truncated';
    }
    return (await this.headIntact(Buffer.alloc(0), 1, 0)) ? 'ok' : 'truncated';
  }

  /** Does the path still name this file? If not, start draining it. */
  async checkPath(): Promise<void> {
    const st = await this.io.stat(this.pathNow);
    if (st !== undefined && st.ino === this.cursorNow.ino && st.dev === this.cursorNow.dev) return;
    // Otherwise gone from this path: renamed (perhaps not recreated yet) or deleted.
    if (this.stateNow === 'draining') return;
    // Still linked somewhere: renamed away; no links left: deleted (still readable through our fd).
    const links = await this.io.fstat(this.fd).then((s) => s.nlink, () => 0);
    this.detach(links > 0 ? 'rename' : 'delete');
  }

  detach(kind: DetachKind): void {
    if (this.stateNow === 'draining') return;
    this.drain(kind);
    this.options.onDetach?.(this, kind);
  }

  /**
   * Reads the file to its end, then finishes, without telling anyone: for a file known from the start
   * not to grow (the rotated copy of a truncated file).
   */
  drain(kind: DetachKind): void {
    this.stateNow = 'draining';
    this.detached = kind;
  }

  /** The path names this file again (e.g. the glob also matches the rotated name). */
  attach(path: string): void {
    this.pathNow = path;
    this.stateNow = 'active';
    this.detached = undefined;
  }
}

import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../telemetry/logger.js';
import type { Clock } from '../util/clock.js';
import { systemClock } from '../util/clock.js';
import { ErrorCode, McError, errorMessage } from '../errors.js';
import type { Entry } from '../wire/entry-batch.js';
import type { Batch, EmitResult, Emitter } from './emitter.js';
import { FileCommit, TAIL_BYTES, tailEvidence } from './file-commit.js';
import { OK, retryable } from './emitter.js';
import { entriesToJsonLines } from './entry-json.js';
import { parsePathTemplate } from './path-template.js';
import type { PathTemplate } from './path-template.js';
import { arrayBatch } from './array-batch.js';
import { ReusedBuffer, rawLines } from './raw-lines.js';

/**
 * Why the file emitter let go of its open file and opened the path again:
 * - `renamed`: the path names another file or none, and the open file still has a name (mv, logrotate);
 * - `deleted`: the open file has no name left (rm, rm -rf of its directory);
 * - `signal`: asked to (SIGHUP, logrotate's postrotate);
 * - `time`: the path's strftime fields (`%Y-%m-%d`) render to another name now.
 */
export const FILE_REOPEN_REASONS = ['renamed', 'deleted', 'signal', 'time'] as const;
export type FileReopenReason = (typeof FILE_REOPEN_REASONS)[number];

/** FileEmitter's settings (from AGGREGATOR_FILE_CONFIGURATION) and hooks. */
export interface FileEmitterOptions {
  /** The output file; strftime fields in its file name (`shipped-%Y-%m-%d.log`) render in UTC. */
  readonly path: string;
  /** raw: the entry's bytes plus "\n"; json: one JSON object per line (see entry-json.ts). */
  readonly format?: 'raw' | 'json';
  /**
   * fdatasync after each batch (and fsync of the directory when a file is created), so a confirmed
   * batch survives a power loss; without it a confirmed batch is in the kernel's page cache of the
   * file at the path (it survives the aggregator's crash, not the machine's).
   */
  readonly fsync?: boolean;
  readonly logger?: Logger;
  /** For strftime fields in the path. */
  readonly clock?: Clock;
  /** Called each time the output is let go and opened again (metrics). */
  readonly onReopen?: (reason: FileReopenReason) => void;
  /**
   * Exactly-once (file-commit.ts): the commit file recording the output's committed size and the
   * identities of the entries in it. Without it the emitter is at-least-once like the others.
   */
  readonly commitPath?: string;
  /** Entries of a batch dropped because their identity is already committed in the output (metrics). */
  readonly onReplaysDropped?: (entries: number) => void;
}

interface Output {
  readonly handle: FileHandle;
  readonly path: string;
  readonly dev: bigint;
  readonly ino: bigint;
  /** When (monotonic ns) the path was last seen naming this file, after a write; undefined: never. */
  checkedAtNs: bigint | undefined;
}

/** How many times one emit writes its batch again because the path kept naming another file. */
const MAX_WRITES_PER_EMIT = 3;
/**
 * A path seen naming the open file less than this long ago, after the previous batch's write, is not
 * looked at again before the next write (only after it, which is what confirms the batch): at a
 * steady stream of batches one stat per batch instead of two.
 */
const RECHECK_BEFORE_WRITE_NS = 100_000_000n;

/**
 * Appends one line per entry to the file the configured path names.
 *
 * A batch is confirmed only once it is in the file that the path names *after* the write (and the
 * fdatasync with `fsync`): a stat of the path, compared (device, inode) with the open file, after
 * each batch's write, and before it unless the last batch's check was under 100 ms ago (one or two
 * stats per batch, never per line). When the path names another
 * file or none (rotated by mv or logrotate, removed with its directory), the file is closed and the
 * path opened again, creating the file; a batch that went into the old file meanwhile is cut back
 * out of it, so that file keeps only confirmed batches, and written again at the path. A missing directory is NOT created (an unmounted
 * volume or a removed directory is an operator's business, and `mkdir -p` would write to whatever lies
 * beneath): the emit is retryable, the retrying emitter backs off and escalates, the batch stays in the
 * spool. Any other failure (full disk, unwritable path) is retryable too; what a failed write left is
 * cut back, so a retried batch is appended whole, once.
 */
export class FileEmitter implements Emitter {
  readonly name = 'file';
  readonly joinsBatches = true;
  private output: Output | undefined;
  private closed = false;
  private readonly format: 'raw' | 'json';
  private readonly template: PathTemplate;
  private readonly clock: Clock;
  /** Emits, reopens and close run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The raw format's output buffer, reused batch after batch (emits run one at a time). */
  private readonly scratch = new ReusedBuffer(4 * 1024 * 1024);
  /** Loaded by start() (or the first emit) when options.commitPath is set. */
  private commit: FileCommit | undefined;

  constructor(private readonly options: FileEmitterOptions) {
    this.format = options.format ?? 'raw';
    this.template = parsePathTemplate(options.path);
    this.clock = options.clock ?? systemClock;
  }

  /** Opens the file at start-up so an obvious mistake is logged early; a failure here is not fatal. */
  async start(): Promise<void> {
    await this.serially(async () => {
      await this.loadCommit();
      const path = this.template.render(this.clock.now());
      try {
        await this.ensureOpen(path);
      } catch (err) {
        this.options.logger?.warn({ path, err: errorMessage(err) }, 'file emitter target not writable yet; will retry');
      }
    });
  }

  async emit(batch: Batch, _signal: AbortSignal): Promise<EmitResult> {
    if (this.closed) return retryable(new McError(ErrorCode.EmitFailed, 'file emitter is closed'));
    if (batch.count === 0) return OK;
    if (this.options.commitPath !== undefined) return this.serially(() => this.appendCommitted(batch.entries()));
    if (this.format === 'json') {
      const data = entriesToJsonLines(batch.entries());
      return this.serially(() => this.append(data));
    }
    // Built in turn, into the buffer the previous batch's write is done with.
    return this.serially(() => this.append(rawLines(batch, this.scratch.take)));
  }

  /** Exactly-once: skip what is committed, append the rest, commit it before confirming (file-commit.ts). */
  private async appendCommitted(all: readonly Entry[]): Promise<EmitResult> {
    let commit: FileCommit;
    try {
      commit = await this.loadCommit();
      await commit.recoverOutput();
    } catch (err) {
      return retryable(new McError(ErrorCode.EmitFailed, `cannot read or apply the commit file: ${errorMessage(err)}`, { cause: err }));
    }
    const { entries, dropped } = commit.unseen(all);
    if (dropped > 0) this.options.onReplaysDropped?.(dropped);
    if (entries.length === 0) return OK;
    const data = this.format === 'json' ? entriesToJsonLines(entries) : rawLines(arrayBatch(0, entries));
    // Before the first byte goes into a file the commit does not name (the first batch ever, or a new
    // file after a rotation), commit that file at its size now: a crash between the write and the
    // batch's commit then leaves bytes that the next start cuts, not a batch written twice.
    const result = await this.append(data, (output) => this.commitBeforeFirstWrite(commit, output));
    const output = this.output;
    if (result.kind !== 'ok' || output === undefined) return result;
    try {
      const st = await output.handle.stat({ bigint: true });
      await commit.commit(entries, { path: output.path, dev: output.dev, ino: output.ino, size: Number(st.size), ...tailEvidence(data) }, this.options.fsync === true);
      return OK;
    } catch (err) {
      // Not committed: take the batch back out, so that its retry appends it once.
      await this.takeBack(output, data.length);
      return retryable(new McError(ErrorCode.EmitFailed, `cannot commit the output: ${errorMessage(err)}`, { cause: err }));
    }
  }

  private async commitBeforeFirstWrite(commit: FileCommit, output: Output): Promise<void> {
    const c = commit.committed;
    if (c !== undefined && c.path === output.path && c.dev === output.dev && c.ino === output.ino) return;
    const size = Number((await output.handle.stat()).size);
    const tail = Buffer.alloc(Math.min(size, TAIL_BYTES));
    if (tail.length > 0) await output.handle.read(tail, 0, tail.length, size - tail.length);
    await commit.commit([], { path: output.path, dev: output.dev, ino: output.ino, size, ...tailEvidence(tail) }, this.options.fsync === true);
  }

  private async loadCommit(): Promise<FileCommit> {
    if (this.commit !== undefined || this.options.commitPath === undefined) return this.commit as FileCommit;
    this.commit = await FileCommit.load(this.options.commitPath, this.options.logger === undefined ? {} : { logger: this.options.logger });
    await this.commit.recoverOutput();
    return this.commit;
  }

  /**
   * Lets go of the open file and opens the path again (SIGHUP, logrotate's postrotate). A failure to
   * open is logged; the next emit tries again.
   */
  async reopen(): Promise<void> {
    await this.serially(async () => {
      if (this.closed) return;
      const held = this.output;
      if (held !== undefined) await this.release(held, 'signal');
      const path = this.template.render(this.clock.now());
      try {
        await this.ensureOpen(path);
        this.options.logger?.info({ path }, 'output reopened');
      } catch (err) {
        this.options.logger?.warn({ path, err: errorMessage(err) }, 'cannot reopen the output yet; the next batch tries again');
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.serially(async () => {
      const held = this.output;
      this.output = undefined;
      if (held !== undefined) {
        await held.handle.datasync().catch(() => undefined);
        await held.handle.close();
      }
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** `beforeWrite` runs for the file the batch is about to go into, right before each write. */
  private async append(data: Buffer, beforeWrite?: (output: Output) => Promise<void>): Promise<EmitResult> {
    if (this.closed) return retryable(new McError(ErrorCode.EmitFailed, 'file emitter is closed'));
    const path = this.template.render(this.clock.now());
    for (let attempt = 1; ; attempt++) {
      let output: Output;
      try {
        output = await this.ensureOpen(path);
        // Look before writing too, unless the last batch's check was a moment ago: the path may have
        // been renamed since, and a batch taken back out of a rotated file may already have been
        // read there (logrotate's compress).
        const checkedAt = output.checkedAtNs;
        const movedSince = checkedAt !== undefined && this.clock.monotonicNs() - checkedAt < RECHECK_BEFORE_WRITE_NS ? undefined : await this.movedAway(output);
        if (movedSince !== undefined) {
          await this.release(output, movedSince);
          output = await this.ensureOpen(path);
        }
      } catch (err) {
        return retryable(new McError(ErrorCode.EmitFailed, `cannot open ${path}: ${errorMessage(err)}`, { cause: err }));
      }
      if (beforeWrite !== undefined) {
        try {
          await beforeWrite(output);
        } catch (err) {
          return retryable(new McError(ErrorCode.EmitFailed, `cannot commit ${path} before writing to it: ${errorMessage(err)}`, { cause: err }));
        }
      }
      const failed = await this.write(output, data);
      if (failed !== undefined) return failed;
      let moved: FileReopenReason | undefined;
      try {
        moved = await this.movedAway(output);
      } catch (err) {
        // The path cannot be checked (e.g. EACCES on the directory): the batch is not confirmed.
        await this.takeBack(output, data.length);
        await this.release(output);
        return retryable(new McError(ErrorCode.EmitFailed, `cannot check ${path}: ${errorMessage(err)}`, { cause: err }));
      }
      if (moved === undefined) {
        output.checkedAtNs = this.clock.monotonicNs();
        return OK;
      }
      // The batch went into a file the path no longer names: take it out of that file and write it
      // again into the file the path names now.
      await this.takeBack(output, data.length);
      await this.release(output, moved);
      if (attempt >= MAX_WRITES_PER_EMIT) {
        return retryable(new McError(ErrorCode.EmitFailed, `${path} named another file after each of ${attempt} writes`));
      }
    }
  }

  /** Writes the whole buffer (and syncs it with `fsync`); on failure cuts back what landed. */
  private async write(output: Output, data: Buffer): Promise<EmitResult | undefined> {
    let written = 0;
    try {
      while (written < data.length) {
        // The file is opened in append mode: the position argument is ignored, every write appends.
        const { bytesWritten } = await output.handle.write(data, written, data.length - written);
        written += bytesWritten;
      }
      if (this.options.fsync === true) await output.handle.datasync();
      return undefined;
    } catch (err) {
      // Cut a partial write back so the retry appends the whole batch once, not a fragment plus it.
      await this.takeBack(output, written);
      await this.release(output);
      return retryable(new McError(ErrorCode.EmitFailed, `cannot write ${output.path}: ${errorMessage(err)}`, { cause: err }));
    }
  }

  /**
   * Does the path still name the open file? undefined when it does, else why not. One stat of the
   * path: the open file's identity was taken when it was opened.
   */
  private async movedAway(output: Output): Promise<FileReopenReason | undefined> {
    try {
      const now = await stat(output.path, { bigint: true });
      if (now.ino === output.ino && now.dev === output.dev) return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    const held = await output.handle.stat().catch(() => undefined);
    return held !== undefined && held.nlink > 0 ? 'renamed' : 'deleted';
  }

  /**
   * Removes the last `bytes` bytes this emitter appended. The emitter is the file's only writer, so
   * they are the file's last bytes; the size is read from the file, not remembered, so a file
   * truncated by someone else is never extended.
   */
  private async takeBack(output: Output, bytes: number): Promise<void> {
    if (bytes === 0) return;
    try {
      const { size } = await output.handle.stat();
      if (size >= bytes) await output.handle.truncate(size - bytes);
    } catch {
      // Nothing to take back from a file that cannot be read or cut; the path check decides.
    }
  }

  private async ensureOpen(path: string): Promise<Output> {
    const held = this.output;
    if (held !== undefined) {
      if (held.path === path) return held;
      await this.release(held, 'time');
    }
    // Exactly-once reads the end of the file it commits (commitBeforeFirstWrite): then read and append.
    const handle = await open(path, this.options.commitPath === undefined ? 'a' : 'a+');
    try {
      const st = await handle.stat({ bigint: true });
      // A new file's directory entry must be durable too before anything in it is confirmed.
      if (this.options.fsync === true) await syncDirectory(dirname(path));
      const output: Output = { handle, path, dev: st.dev, ino: st.ino, checkedAtNs: undefined };
      this.output = output;
      return output;
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /** Closes the open file; with a reason, logs and counts why the path will be opened again. */
  private async release(output: Output, reason?: FileReopenReason): Promise<void> {
    if (this.output === output) this.output = undefined;
    await output.handle.close().catch(() => undefined);
    if (reason === undefined) return;
    this.options.onReopen?.(reason);
    if (reason === 'renamed' || reason === 'deleted') {
      this.options.logger?.warn({ path: output.path, reason }, 'the path no longer names the open output file; opening it again');
    } else {
      this.options.logger?.info({ path: output.path, reason }, 'closing the output file to open the path again');
    }
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

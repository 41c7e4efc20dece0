import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Logger } from '../telemetry/logger.js';
import { ErrorCode, McError, errorMessage } from '../errors.js';
import type { Batch, EmitResult, Emitter } from './emitter.js';
import { OK, retryable } from './emitter.js';
import { entriesToJsonLines } from './entry-json.js';
import { entriesToRawLines } from './raw-lines.js';

export interface FileEmitterOptions {
  readonly path: string;
  /** raw: the entry's bytes plus "\n"; json: one JSON object per line (see entry-json.ts). */
  readonly format?: 'raw' | 'json';
  /** fdatasync after each batch; without it the write has reached the kernel when emit resolves. */
  readonly fsync?: boolean;
  readonly logger?: Logger;
}

/**
 * Appends one line per entry to a file. A failure (unwritable path, full disk) is retryable: the file
 * is reopened on the next attempt, so the emitter recovers once the path becomes writable again. A
 * failed write is cut back to the size before it, so a retried batch does not leave half a batch
 * behind it.
 */
export class FileEmitter implements Emitter {
  readonly name = 'file';
  private handle: FileHandle | undefined;
  private size = 0;
  private closed = false;
  private readonly format: 'raw' | 'json';

  constructor(private readonly options: FileEmitterOptions) {
    this.format = options.format ?? 'raw';
  }

  /** Opens the file at start-up so an obvious mistake is logged early; a failure here is not fatal. */
  async start(): Promise<void> {
    try {
      await this.ensureOpen();
    } catch (err) {
      this.options.logger?.warn({ path: this.options.path, err: errorMessage(err) }, 'file emitter target not writable yet; will retry');
    }
  }

  private async ensureOpen(): Promise<FileHandle> {
    if (this.handle !== undefined) return this.handle;
    const handle = await open(this.options.path, 'a');
    try {
      this.size = (await handle.stat()).size;
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    this.handle = handle;
    return handle;
  }

  private async dropHandle(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h !== undefined) await h.close().catch(() => undefined);
  }

  async emit(batch: Batch, _signal: AbortSignal): Promise<EmitResult> {
    if (this.closed) return retryable(new McError(ErrorCode.EmitFailed, 'file emitter is closed'));
    if (batch.entries.length === 0) return OK;
    const data = this.format === 'json' ? entriesToJsonLines(batch.entries) : entriesToRawLines(batch.entries);
    let handle: FileHandle;
    try {
      handle = await this.ensureOpen();
    } catch (err) {
      return retryable(new McError(ErrorCode.EmitFailed, `cannot open ${this.options.path}: ${errorMessage(err)}`, { cause: err }));
    }
    const before = this.size;
    try {
      let written = 0;
      while (written < data.length) {
        // The file is opened in append mode: the position argument is ignored, every write appends.
        const { bytesWritten } = await handle.write(data, written, data.length - written);
        written += bytesWritten;
      }
      if (this.options.fsync === true) await handle.datasync();
      this.size = before + data.length;
      return OK;
    } catch (err) {
      // Cut a partial write back so the retry appends the whole batch once, not a fragment plus it.
      await handle.truncate(before).catch(() => undefined);
      await this.dropHandle();
      const error = new McError(ErrorCode.EmitFailed, `cannot write ${this.options.path}: ${errorMessage(err)}`, { cause: err });
      return retryable(error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const h = this.handle;
    this.handle = undefined;
    if (h !== undefined) {
      await h.datasync().catch(() => undefined);
      await h.close();
    }
  }
}

import type { Writable } from 'node:stream';
import { ErrorCode, McError, errorMessage } from '../errors.js';
import type { Batch, EmitResult, Emitter } from './emitter.js';
import { OK, retryable } from './emitter.js';
import { entriesToJsonLines } from './entry-json.js';
import { rawLines } from './raw-lines.js';

/** TextEmitter's settings. */
export interface TextEmitterOptions {
  readonly format?: 'raw' | 'json';
  /** Where lines go; stdout by default (the logs go to stderr). */
  readonly stream?: Writable;
}

/**
 * Writes each batch as text lines to stdout. Honours back pressure: when write() returns false the
 * emit waits for 'drain' before confirming, so a slow reader slows the batcher instead of growing
 * Node's write buffer without bound.
 */
export class TextEmitter implements Emitter {
  readonly name = 'text';
  readonly joinsBatches = true;
  private readonly stream: Writable;
  private readonly format: 'raw' | 'json';
  private closed = false;

  constructor(options: TextEmitterOptions = {}) {
    this.stream = options.stream ?? process.stdout;
    this.format = options.format ?? 'raw';
  }

  async emit(batch: Batch, signal: AbortSignal): Promise<EmitResult> {
    if (this.closed) return retryable(new McError(ErrorCode.EmitFailed, 'text emitter is closed'));
    if (batch.count === 0) return OK;
    const data = this.format === 'json' ? entriesToJsonLines(batch.entries()) : rawLines(batch);
    try {
      await this.write(data, signal);
      return OK;
    } catch (err) {
      return retryable(new McError(ErrorCode.EmitFailed, `cannot write to stdout: ${errorMessage(err)}`, { cause: err }));
    }
  }

  private write(data: Buffer, signal: AbortSignal): Promise<void> {
    const stream = this.stream;
    return new Promise<void>((resolve, reject) => {
      let flushed = false;
      let drained = false;
      const cleanup = (): void => {
        stream.off('drain', onDrain);
        stream.off('error', onError);
        signal.removeEventListener('abort', onAbort);
      };
      const finish = (): void => {
        if (flushed && drained) {
          cleanup();
          resolve();
        }
      };
      const onDrain = (): void => {
        drained = true;
        finish();
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const onAbort = (): void => {
        // The bytes are queued in the stream already; aborting only stops waiting for them.
        cleanup();
        reject(new Error('aborted while waiting for stdout to drain'));
      };
      stream.on('error', onError);
      signal.addEventListener('abort', onAbort, { once: true });
      const ok = stream.write(data, (err) => {
        if (err) {
          onError(err);
          return;
        }
        flushed = true;
        finish();
      });
      if (ok) drained = true;
      else stream.once('drain', onDrain);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

import type { Batch, EmitResult, Emitter } from './emitter.js';
import { OK } from './emitter.js';

/** Counts and discards: the default when no emitter is configured, and the baseline for benchmarks. */
export class BlackholeEmitter implements Emitter {
  readonly name = 'blackhole';
  readonly joinsBatches = true;
  private entryCount = 0;
  private batchCount = 0;

  get entries(): number {
    return this.entryCount;
  }

  get batches(): number {
    return this.batchCount;
  }

  async emit(batch: Batch): Promise<EmitResult> {
    this.entryCount += batch.count;
    this.batchCount++;
    return OK;
  }

  async close(): Promise<void> {}
}

import type { Entry } from '../wire/entry-batch.js';
import type { Batch, EmitResult, Emitter } from './emitter.js';
import { OK } from './emitter.js';
import { arrayBatch } from './array-batch.js';

/**
 * Keeps emitted entries in memory. For tests and benchmarks of the stages before the emitter; a
 * `respond` hook lets a test script failures batch by batch.
 */
export class MemoryEmitter implements Emitter {
  readonly name = 'memory';
  readonly batches: Batch[] = [];
  closed = false;

  constructor(private readonly respond: (batch: Batch) => EmitResult | Promise<EmitResult> = () => OK) {}

  get entries(): Entry[] {
    return this.batches.flatMap((b) => b.entries());
  }

  async emit(batch: Batch): Promise<EmitResult> {
    const result = await this.respond(batch);
    if (result.kind === 'ok') this.batches.push(batch);
    else if (result.kind === 'fatal') {
      const rejected = new Set(result.rejected);
      this.batches.push(arrayBatch(batch.id, batch.entries().filter((_, i) => !rejected.has(i))));
    }
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

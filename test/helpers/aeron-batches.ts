import { EntryBatchWriter, RunHead, decodeEntries, encodeBatchHeader } from '../../src/wire/entry-batch.js';
import type { Batch } from '../../src/emitters/emitter.js';
import { arrayBatch } from '../../src/emitters/array-batch.js';

/** Batches of numbered lines "line-<n> ..." (n from `first`), built through the real EntryBatch codec. */
export function makeBatches(count: number, perBatch: number, lineBytes = 120, first = 0): Batch[] {
  const head = new RunHead('/var/log/app.log', 'dev:ino');
  const writer = new EntryBatchWriter(encodeBatchHeader('collector-1', [{ key: 'host', value: 'h1' }]));
  const batches: Batch[] = [];
  let n = first;
  for (let b = 0; b < count; b++) {
    for (let i = 0; i < perBatch; i++, n++) {
      const text = Buffer.from(`line-${n} `.padEnd(lineBytes, 'x'));
      writer.addLine(head, text, 0, text.length, n * lineBytes, 1_700_000_000_000_000_000n + BigInt(n));
    }
    batches.push(arrayBatch(b + 1, decodeEntries(writer.finish())));
  }
  return batches;
}

/** The number in "line-<n> ...". */
export function lineNumber(msg: Buffer): number {
  const end = msg.indexOf(0x20);
  return Number(msg.toString('latin1', 5, end));
}

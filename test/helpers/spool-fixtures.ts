import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EntryBatchWriter, RunHead, encodeBatchHeader } from '../../src/wire/entry-batch.js';

/** An EntryBatch of `count` lines `line-<first+i>` (file offsets first+i), for spool and batcher tests. */
export function makeBatch(first: number, count: number, collectorId = 'c-1', lineBytes = 0): Buffer {
  const w = new EntryBatchWriter(encodeBatchHeader(collectorId, [{ key: 'host', value: 'h' }]));
  const head = new RunHead('/var/log/app.log', 'dev:1:ino:2');
  for (let i = 0; i < count; i++) {
    const text = `line-${first + i}`;
    const line = lineBytes > text.length ? Buffer.concat([Buffer.from(text), Buffer.alloc(lineBytes - text.length, 0x2e)]) : Buffer.from(text);
    w.addLine(head, line, 0, line.length, first + i, BigInt(first + i));
  }
  return w.finish();
}

/** A fresh temporary directory and a function that removes it. */
export async function tempDir(prefix = 'spool-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

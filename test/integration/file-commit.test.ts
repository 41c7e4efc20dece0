import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { arrayBatch } from '../../src/emitters/array-batch.js';
import { FileEmitter } from '../../src/emitters/file-emitter.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import type { Entry } from '../../src/wire/entry-batch.js';
import { buildEntries } from '../helpers/ingest-client.js';

/**
 * The file emitter's commit (src/emitters/file-commit.ts) against real files: what a kill -9 of the
 * aggregator leaves behind is replayed here step by step, deterministically.
 */
const signal = new AbortController().signal;
let dir: string;

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Numbered lines `from`..`to` (exclusive) of one file, as the spool would hand them out. */
function entries(from: number, to: number): Entry[] {
  const lines = Array.from({ length: to - from }, (_, i) => ({ data: Buffer.from(`line ${String(from + i).padStart(5, '0')}`), offset: (from + i) * 11 }));
  return decodeEntries(buildEntries(lines, { collectorId: 'c1' }).entries);
}

const text = (from: number, to: number): string => Array.from({ length: to - from }, (_, i) => `line ${String(from + i).padStart(5, '0')}\n`).join('');

async function emitter(out: string, dropped: number[] = []): Promise<FileEmitter> {
  const e = new FileEmitter({ path: out, commitPath: join(dir, 'file-emitter.commit.json'), onReplaysDropped: (n) => dropped.push(n) });
  await e.start();
  return e;
}

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'src');
const distUrl = (p: string): string => pathToFileURL(join(dist, p)).href;
/** Emits 1,000,000 lines of 120 B (another file than `entries()`) as one batch with exactly-once on. */
const BIG_BATCH_WRITER = `
import { FileEmitter } from '${distUrl('emitters/file-emitter.js')}';
import { arrayBatch } from '${distUrl('emitters/array-batch.js')}';
import { EntryBatchWriter, RunHead, decodeEntries, encodeBatchHeader } from '${distUrl('wire/entry-batch.js')}';
const [out, commitPath] = process.argv.slice(1);
const writer = new EntryBatchWriter(encodeBatchHeader('c1', []), 130 * 1024 * 1024);
const head = new RunHead('/var/log/big.log', 'big-1');
const line = Buffer.alloc(120, 0x62);
for (let i = 0; i < 1_000_000; i++) writer.addLine(head, line, 0, line.length, i * 121, 0n);
const e = new FileEmitter({ path: out, commitPath });
await e.start();
await e.emit(arrayBatch(1, decodeEntries(writer.finish())), new AbortController().signal);
`;

describe('file emitter commit: exactly-once across a crash', () => {
  it('cuts bytes written but never committed, and drops committed entries delivered again', async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-file-commit-'));
    const out = join(dir, 'out.log');
    const first = await emitter(out);
    expect((await first.emit(arrayBatch(1, entries(0, 100)), signal)).kind).toBe('ok');
    expect((await first.emit(arrayBatch(2, entries(100, 150)), signal)).kind).toBe('ok');
    // kill -9 between the write of the next batch and its commit: its bytes are in the file, uncommitted.
    await appendFile(out, text(150, 170));
    // (no close: the process died)

    const dropped: number[] = [];
    const second = await emitter(out, dropped);
    expect(await readFile(out, 'utf8')).toBe(text(0, 150)); // cut back at start, before any write
    // The spool's persisted delivered position lagged: it hands out 100..200 again.
    expect((await second.emit(arrayBatch(1, entries(100, 200)), signal)).kind).toBe('ok');
    expect(await readFile(out, 'utf8')).toBe(text(0, 200));
    expect(dropped).toEqual([50]);
    // A batch entirely delivered already is confirmed without a write.
    const size = (await stat(out)).size;
    expect((await second.emit(arrayBatch(2, entries(0, 200)), signal)).kind).toBe('ok');
    expect((await stat(out)).size).toBe(size);
    expect(dropped).toEqual([50, 200]);
    await second.close();
  });

  it('two copies of the same entries in one batch (a chunk stored twice, neither committed yet) are written once', async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-file-commit-'));
    const out = join(dir, 'out.log');
    const dropped: number[] = [];
    const e = await emitter(out, dropped);
    expect((await e.emit(arrayBatch(1, [...entries(0, 120), ...entries(80, 200)]), signal)).kind).toBe('ok');
    expect(await readFile(out, 'utf8')).toBe(text(0, 200));
    expect(dropped).toEqual([40]);
    // Committed: the same entries again in a later batch are dropped as before.
    expect((await e.emit(arrayBatch(2, entries(150, 210)), signal)).kind).toBe('ok');
    expect(await readFile(out, 'utf8')).toBe(text(0, 210));
    expect(dropped).toEqual([40, 50]);
    await e.close();
  });

  it('kill -9 while the very first batch is being written: the next start cuts it (the commit names the file before its first byte)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-file-commit-'));
    const out = join(dir, 'out.log');
    const commitPath = join(dir, 'file-emitter.commit.json');
    // A real process (the built emitter) writes one batch of 120 MB and is killed once bytes appear.
    // If it got as far as committing the whole batch, the moment was missed: try again.
    let killedMidWrite = false;
    for (let attempt = 0; attempt < 3 && !killedMidWrite; attempt++) {
      await rm(out, { force: true });
      await rm(commitPath, { force: true });
      const child = spawn(process.execPath, ['--input-type=module', '-e', BIG_BATCH_WRITER, out, commitPath], { stdio: 'ignore' });
      const exited = new Promise((r) => child.once('exit', r));
      const deadline = Date.now() + 30_000;
      while (!(existsSync(out) && statSync(out).size > 0) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 1));
      child.kill('SIGKILL');
      await exited;
      const size = existsSync(out) ? statSync(out).size : 0;
      const committed = existsSync(commitPath) ? (JSON.parse(readFileSync(commitPath, 'utf8')) as { output: { size: number } | null }).output?.size : undefined;
      killedMidWrite = size > 0 && committed !== size;
    }
    expect(killedMidWrite).toBe(true);
    const e = await emitter(out);
    expect((await e.emit(arrayBatch(1, entries(0, 10)), signal)).kind).toBe('ok');
    expect(await readFile(out, 'utf8')).toBe(text(0, 10));
    await e.close();
  });

  it('a batch whose commit cannot be written is not confirmed and is taken back out of the output', async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-file-commit-'));
    const out = join(dir, 'out.log');
    const e = new FileEmitter({ path: out, commitPath: join(dir, 'missing-dir', 'commit.json') });
    await e.start();
    const result = await e.emit(arrayBatch(1, entries(0, 10)), signal);
    expect(result.kind).toBe('retryable');
    expect(await readFile(out, 'utf8')).toBe('');
    await e.close();
  });

  it('leaves a file alone that is not the one committed (rotated away while the aggregator was down)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-file-commit-'));
    const out = join(dir, 'out.log');
    const first = await emitter(out);
    expect((await first.emit(arrayBatch(1, entries(0, 10)), signal)).kind).toBe('ok');
    await first.close();
    await rm(out);
    await appendFile(out, text(500, 600)); // someone else's file now at the path
    const second = await emitter(out);
    expect((await second.emit(arrayBatch(1, entries(10, 20)), signal)).kind).toBe('ok');
    expect(await readFile(out, 'utf8')).toBe(text(500, 600) + text(10, 20));
    await second.close();
  });
});

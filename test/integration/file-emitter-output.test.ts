import { execFile } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FileHandle } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileEmitter } from '../../src/emitters/file-emitter.js';
import type { FileReopenReason } from '../../src/emitters/file-emitter.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { buildEntries } from '../helpers/ingest-client.js';
import { arrayBatch } from '../../src/emitters/array-batch.js';

/**
 * The file emitter against real files and the real tools an operator uses on its output (mv, rm -rf):
 * a confirmed batch is in the file the configured path names, never in a renamed or deleted one.
 */

const run = promisify(execFile);
const signal = new AbortController().signal;

type Write = FileHandle['write'];
type AnyWrite = (this: FileHandle, ...args: unknown[]) => ReturnType<Write>;

/**
 * Replaces Node's FileHandle.prototype.write with `make(original, restore)` until `restore()`: the only
 * way to make "renamed, removed or failing in the middle of a batch" happen every time rather than by
 * luck. Returns `restore`.
 */
async function wrapWrite(dir: string, make: (original: AnyWrite, restore: () => void) => AnyWrite): Promise<() => void> {
  const probe = await open(join(dir, '.probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { write: AnyWrite };
  await probe.close();
  await rm(join(dir, '.probe'));
  const original = proto.write;
  const restore = (): void => {
    proto.write = original;
  };
  proto.write = make(original, restore);
  return restore;
}

/** Runs `act` on the real filesystem right before the emitter's next write (after its check of the path). */
function beforeNextWrite(dir: string, act: () => void): Promise<() => void> {
  return wrapWrite(dir, (original, restore) =>
    function (this: FileHandle, ...args: unknown[]) {
      act();
      restore();
      return original.apply(this, args);
    },
  );
}

function batchOf(lines: string[], id = 1) {
  return arrayBatch(id, decodeEntries(buildEntries(lines.map((l, i) => ({ data: Buffer.from(l), offset: i * 100 }))).entries));
}

describe('file emitter output: rotation and removal (real files, mv, rm -rf)', () => {
  let dir: string;
  let reopens: FileReopenReason[];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-file-output-'));
    reopens = [];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** An emitter writing to <dir>/out/shipped.log, for the tests that remove <dir>/out. */
  async function emitterInSubdirectory(): Promise<{ sub: string; path: string; e: FileEmitter }> {
    const sub = join(dir, 'out');
    await mkdir(sub);
    const path = join(sub, 'shipped.log');
    return { sub, path, e: new FileEmitter({ path, onReopen: (r) => reopens.push(r) }) };
  }

  it('mv of the output between batches: the next batch goes to a new file at the path, the moved file keeps only what was confirmed', async () => {
    const path = join(dir, 'shipped.log');
    const e = new FileEmitter({ path, onReopen: (r) => reopens.push(r) });
    expect((await e.emit(batchOf(['a1', 'a2']), signal)).kind).toBe('ok');
    await run('mv', [path, `${path}.1`]);
    // No signal: the emitter's file descriptor still points at shipped.log.1 when this batch is written.
    expect((await e.emit(batchOf(['b1', 'b2'], 2), signal)).kind).toBe('ok');
    expect(await readFile(`${path}.1`, 'utf8')).toBe('a1\na2\n');
    expect(await readFile(path, 'utf8')).toBe('b1\nb2\n');
    expect(reopens).toEqual(['renamed']);
    // logrotate's `create`: a new empty file appears at the path before the next batch.
    await run('mv', [path, `${path}.2`]);
    await writeFile(path, '');
    expect((await e.emit(batchOf(['c1'], 3), signal)).kind).toBe('ok');
    expect(await readFile(`${path}.2`, 'utf8')).toBe('b1\nb2\n');
    expect(await readFile(path, 'utf8')).toBe('c1\n');
    expect(reopens).toEqual(['renamed', 'renamed']);
    await e.close();
  });

  it('renamed in the middle of a batch: the batch is taken back out of the renamed file and written at the path', async () => {
    const path = join(dir, 'shipped.log');
    const e = new FileEmitter({ path, onReopen: (r) => reopens.push(r) });
    expect((await e.emit(batchOf(['a1', 'a2']), signal)).kind).toBe('ok');
    const restore = await beforeNextWrite(dir, () => renameSync(path, `${path}.1`));
    try {
      expect((await e.emit(batchOf(['b1', 'b2'], 2), signal)).kind).toBe('ok');
    } finally {
      restore();
    }
    expect(await readFile(`${path}.1`, 'utf8')).toBe('a1\na2\n');
    expect(await readFile(path, 'utf8')).toBe('b1\nb2\n');
    expect(reopens).toEqual(['renamed']);
    await e.close();
  });

  it('directory removed in the middle of a batch: not confirmed; written once at the path when the directory is back', async () => {
    const { sub, path, e } = await emitterInSubdirectory();
    expect((await e.emit(batchOf(['a']), signal)).kind).toBe('ok');
    const restore = await beforeNextWrite(dir, () => rmSync(sub, { recursive: true }));
    try {
      const r = await e.emit(batchOf(['b'], 2), signal);
      expect(r.kind).toBe('retryable');
      if (r.kind === 'retryable') expect(r.error.message).toMatch(/ENOENT/);
    } finally {
      restore();
    }
    expect(reopens).toEqual(['deleted']);
    await mkdir(sub);
    expect((await e.emit(batchOf(['b'], 2), signal)).kind).toBe('ok');
    expect(await readFile(path, 'utf8')).toBe('b\n');
    await e.close();
  });

  it('a write that fails half-way is cut back, so the retried batch is in the file once, whole', async () => {
    const path = join(dir, 'shipped.log');
    const e = new FileEmitter({ path });
    expect((await e.emit(batchOf(['first']), signal)).kind).toBe('ok');
    let calls = 0;
    const restore = await wrapWrite(dir, (original, unwrap) =>
      function (this: FileHandle, ...args: unknown[]) {
        calls++;
        const [data, offset, length] = args as [Buffer, number, number];
        if (calls === 1) return original.call(this, data, offset, Math.ceil(length / 2));
        unwrap();
        return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      },
    );
    try {
      const r = await e.emit(batchOf(['second-line-long', 'third-line-long'], 2), signal);
      expect(r.kind).toBe('retryable');
      if (r.kind === 'retryable') expect(r.error.message).toMatch(/ENOSPC/);
    } finally {
      restore();
    }
    expect(calls).toBe(2);
    expect(await readFile(path, 'utf8')).toBe('first\n');
    expect((await e.emit(batchOf(['second-line-long', 'third-line-long'], 2), signal)).kind).toBe('ok');
    expect(await readFile(path, 'utf8')).toBe('first\nsecond-line-long\nthird-line-long\n');
    await e.close();
  });

  it('reopen() (SIGHUP after logrotate create) moves to the new file at once; a failed reopen is retried by the next emit', async () => {
    const path = join(dir, 'shipped.log');
    const e = new FileEmitter({ path, onReopen: (r) => reopens.push(r) });
    await e.start();
    expect((await e.emit(batchOf(['a']), signal)).kind).toBe('ok');
    await rename(path, `${path}.1`);
    await e.reopen();
    // The file is created by the reopen, before any batch.
    expect((await stat(path)).size).toBe(0);
    expect((await e.emit(batchOf(['b'], 2), signal)).kind).toBe('ok');
    expect(await readFile(`${path}.1`, 'utf8')).toBe('a\n');
    expect(await readFile(path, 'utf8')).toBe('b\n');
    expect(reopens).toEqual(['signal']);

    await run('rm', ['-rf', dir]);
    await e.reopen(); // cannot open: logged, not thrown
    expect((await e.emit(batchOf(['c'], 3), signal)).kind).toBe('retryable');
    await mkdir(dir);
    expect((await e.emit(batchOf(['c'], 3), signal)).kind).toBe('ok');
    expect(await readFile(path, 'utf8')).toBe('c\n');
    await e.close();
  });

  it('rm -rf of the output directory: the batch is not confirmed (retryable, ENOENT) until the directory is back, then written once', async () => {
    const { sub, path, e } = await emitterInSubdirectory();
    expect((await e.emit(batchOf(['before']), signal)).kind).toBe('ok');
    await run('rm', ['-rf', sub]);
    for (let attempt = 0; attempt < 3; attempt++) {
      const r = await e.emit(batchOf(['after-1', 'after-2'], 2), signal);
      expect(r.kind).toBe('retryable');
      if (r.kind === 'retryable') expect(r.error.message).toMatch(/ENOENT/);
    }
    // The emitter does not create the directory: it is still missing.
    await expect(stat(sub)).rejects.toThrow(/ENOENT/);
    expect(reopens).toEqual(['deleted']);
    await mkdir(sub);
    expect((await e.emit(batchOf(['after-1', 'after-2'], 2), signal)).kind).toBe('ok');
    expect(await readFile(path, 'utf8')).toBe('after-1\nafter-2\n');
    await e.close();
  });

  it('the file alone deleted (rm): the batch is written again into a new file at the path', async () => {
    const path = join(dir, 'shipped.log');
    const e = new FileEmitter({ path, fsync: true, onReopen: (r) => reopens.push(r) });
    expect((await e.emit(batchOf(['a']), signal)).kind).toBe('ok');
    await run('rm', ['-f', path]);
    expect((await e.emit(batchOf(['b'], 2), signal)).kind).toBe('ok');
    expect(await readFile(path, 'utf8')).toBe('b\n');
    expect(reopens).toEqual(['deleted']);
    await e.close();
  });

  it('a path with strftime fields writes each batch to the file named by the emit time (UTC), and reopens when the day turns', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 29, 23, 59, 59, 500));
    const e = new FileEmitter({ path: join(dir, 'shipped-%Y-%m-%d.log'), clock, onReopen: (r) => reopens.push(r) });
    expect((await e.emit(batchOf(['day1']), signal)).kind).toBe('ok');
    clock.advance(1000);
    expect((await e.emit(batchOf(['day2'], 2), signal)).kind).toBe('ok');
    await e.close();
    expect((await readdir(dir)).sort()).toEqual(['shipped-2026-11-29.log', 'shipped-2026-11-30.log']);
    expect(await readFile(join(dir, 'shipped-2026-11-29.log'), 'utf8')).toBe('day1\n');
    expect(await readFile(join(dir, 'shipped-2026-11-30.log'), 'utf8')).toBe('day2\n');
    expect(reopens).toEqual(['time']);
  });
});

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readdir, stat, truncate, appendFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { Spool } from '../../src/spool/spool.js';
import type { SpoolRecord } from '../../src/spool/spool.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { makeBatch, tempDir } from '../helpers/spool-fixtures.js';
import { seededRandom } from '../helpers/seeded-random.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WRITER = join(ROOT, 'test', 'helpers', 'spool-writer.mjs');
const BUILT_SPOOL = join(ROOT, 'dist', 'src', 'spool', 'spool.js');

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Mirrors makeRecord in spool-writer.mjs: throws unless `data` is exactly what the writer wrote for its seq. */
function checkRecord(data: Buffer): number {
  const entries = decodeEntries(data);
  const seq = Number(entries[0]!.line.toString('latin1').split(':')[1]);
  const lines = 1 + (seq % 13);
  const lineBytes = 50 + ((seq * 7919) % 4000);
  if (entries.length !== lines) throw new Error(`record ${seq}: ${entries.length} entries, expected ${lines}`);
  entries.forEach((e, i) => {
    const prefix = Buffer.from(`seq:${seq}:${i}:`);
    const expected = Buffer.alloc(Math.max(lineBytes, prefix.length), (seq + i) & 0xff);
    prefix.copy(expected);
    if (!e.line.equals(expected)) throw new Error(`record ${seq} line ${i} differs`);
    if (e.offset !== seq * 100 + i) throw new Error(`record ${seq} line ${i}: offset ${e.offset}`);
  });
  return seq;
}

interface ChildRun {
  readonly acked: number[];
  readonly delivered: number[];
  /** What a Spool.open of the same directory did while the writer ran. */
  readonly secondOpen: unknown;
}

/** Runs the writer until it has acknowledged at least `minAcks` records and `ms` passed, then kill -9. */
function runAndKill(dir: string, firstSeq: number, deliver: boolean, minAcks: number, ms: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dir, String(firstSeq), String(256 * 1024), deliver ? '1' : '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: number[] = [];
    const delivered: number[] = [];
    let stderr = '';
    let rest = '';
    let killed = false;
    let timeUp = false;
    let secondOpen: unknown;
    let secondOpenDone: Promise<void> = Promise.resolve();
    const maybeKill = (): void => {
      if (!killed && timeUp && acked.length >= minAcks && secondOpen !== undefined) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      timeUp = true;
      maybeKill();
    }, ms);
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (chunk: Buffer) => {
      const text = rest + chunk.toString('latin1');
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) {
        if (l.startsWith('READY ')) {
          secondOpenDone = Spool.open({ dir, maxBytes: 1 << 30 }).then(
            async (s) => {
              secondOpen = 'opened';
              await s.close();
            },
            (err: unknown) => {
              secondOpen = err;
              maybeKill();
            },
          );
        } else if (l.startsWith('A ')) acked.push(Number(l.slice(2)));
        else if (l.startsWith('D ')) delivered.push(Number(l.slice(2)));
      }
      maybeKill();
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      // Lines after the last newline were cut by the kill: not acknowledged.
      if (signal !== 'SIGKILL' || !killed) reject(new Error(`writer exited ${code ?? signal}: ${stderr}`));
      else void secondOpenDone.then(() => resolve({ acked, delivered, secondOpen }));
    });
  });
}

async function readAll(spool: Spool): Promise<SpoolRecord[]> {
  const reader = spool.reader();
  const end = spool.stats().appendPosition;
  const out: SpoolRecord[] = [];
  for (;;) {
    const ac = new AbortController();
    // Everything durable is readable at once; a long wait means we reached the end (the loop below
    // stops earlier when the last record ends at the append position, the usual case).
    const t = setTimeout(() => ac.abort(new Error('end')), 1500);
    try {
      out.push(await reader.next(ac.signal));
    } catch (err) {
      if ((err as Error).message === 'end') break;
      throw err;
    } finally {
      clearTimeout(t);
    }
    const last = out[out.length - 1]!;
    if (last.next.segment === end.segment && last.next.offset >= end.offset) break;
  }
  return out;
}

describe('spool crash safety (kill -9 of a real writer process)', () => {
  it('keeps every acknowledged record intact across repeated kill -9, with delivery and segment deletion', async () => {
    expect(existsSync(BUILT_SPOOL), `${BUILT_SPOOL} is missing: run \`npm run build\` first`).toBe(true);
    const t = await tempDir('spool-crash-');
    cleanups.push(t.cleanup);
    const acked = new Set<number>();
    const delivered = new Set<number>();
    let nextSeq = 0;
    const random = seededRandom();
    for (let round = 0; round < 4; round++) {
      const deliver = round % 2 === 1;
      const run = await runAndKill(t.dir, nextSeq, deliver, 50, 300 + Math.floor(random() * 700));
      run.acked.forEach((s) => acked.add(s));
      run.delivered.forEach((s) => delivered.add(s));
      expect(run.acked.length).toBeGreaterThanOrEqual(50);
      // The live writer holds the directory's lock; after kill -9 the stale lock is taken over below.
      expect(run.secondOpen).toMatchObject({ code: ErrorCode.SpoolLocked });

      const spool = await Spool.open({ dir: t.dir, maxBytes: 256 * 1024 * 1024, segmentBytes: 256 * 1024 });
      try {
        const records = await readAll(spool);
        const seqs = records.map((r) => checkRecord(r.data)); // intact, no torn record returned
        // Appends are written in call order and a crash only cuts the tail: what remains is a contiguous run.
        for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
        const present = new Set(seqs);
        const lost = [...acked].filter((s) => !present.has(s) && !delivered.has(s));
        expect(lost).toEqual([]);
        const max = Math.max(...acked, ...seqs);
        nextSeq = max + 1;
        // The open truncated any torn tail: appending continues and reads back.
        const files = (await readdir(t.dir)).filter((n) => n.endsWith('.seg'));
        expect(files.length).toBe(spool.stats().segments);
      } finally {
        await spool.close();
      }
    }
    expect(delivered.size).toBeGreaterThan(0);
  });
});

describe('spool recovery from damaged files', () => {
  async function writeRecords(dir: string, count: number, segmentBytes: number): Promise<Buffer[]> {
    const spool = await Spool.open({ dir, maxBytes: 1 << 30, segmentBytes });
    const batches = Array.from({ length: count }, (_, i) => makeBatch(i * 10, 10, 'c-1', 100));
    for (const b of batches) await spool.append(b, 10);
    await spool.close();
    return batches;
  }

  async function segmentPaths(dir: string): Promise<string[]> {
    return (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort().map((n) => join(dir, n));
  }

  it('cuts a torn tail (truncated mid-record, or garbage appended) and keeps the rest', async () => {
    const t = await tempDir('spool-torn-');
    cleanups.push(t.cleanup);
    const batches = await writeRecords(t.dir, 30, 8192);
    const paths = await segmentPaths(t.dir);
    const last = paths[paths.length - 1]!;
    const size = (await stat(last)).size;
    await truncate(last, size - 7);
    await appendFile(last, Buffer.alloc(3000, 0)); // zeros, as a crash on some filesystems leaves them
    const spool = await Spool.open({ dir: t.dir, maxBytes: 1 << 30, segmentBytes: 8192 });
    try {
      const records = await readAll(spool);
      expect(records.length).toBe(29);
      expect(records.map((r) => r.data.toString('hex'))).toEqual(batches.slice(0, 29).map((b) => b.toString('hex')));
      expect(spool.stats().corruptRanges).toBe(0);
      await spool.append(batches[29]!, 10);
      const again = await readAll(spool);
      expect(again[29]!.data.equals(batches[29]!)).toBe(true);
    } finally {
      await spool.close();
    }
  });

  async function flipByte(path: string, at: number): Promise<void> {
    const fh = await open(path, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, at);
    await fh.close();
  }

  const firstLine = (r: SpoolRecord): string => decodeEntries(r.data)[0]!.line.toString().replace(/\.+$/, '');

  it('counts and skips a corrupt record in the middle of an older segment, keeping the records after it', async () => {
    const t = await tempDir('spool-corrupt-');
    cleanups.push(t.cleanup);
    const batches = await writeRecords(t.dir, 40, 8192);
    const paths = await segmentPaths(t.dir);
    expect(paths.length).toBeGreaterThan(3);
    // Flip a payload byte of the second record of the first segment (a bit flip on disk).
    await flipByte(paths[0]!, 16 + (16 + batches[0]!.length) + 16 + 20);
    for (let i = 0; i < 2; i++) {
      // Opening twice: the damage never makes open fail (no crash loop).
      const spool = await Spool.open({ dir: t.dir, maxBytes: 1 << 30, segmentBytes: 8192 });
      try {
        const records = await readAll(spool);
        expect(records.map(firstLine)).toEqual(batches.map((_, k) => `line-${k * 10}`).filter((l) => l !== 'line-10'));
        expect(records.every((r) => r.data.equals(batches[Number(firstLine(r).slice(5)) / 10]!))).toBe(true);
        expect(spool.stats().corruptRanges).toBe(1);
      } finally {
        await spool.close();
      }
    }
  });

  it('does not truncate the last segment at a damaged record that valid records follow', async () => {
    const t = await tempDir('spool-corrupt-last-');
    cleanups.push(t.cleanup);
    const batches = await writeRecords(t.dir, 5, 1 << 20);
    const [path] = await segmentPaths(t.dir);
    const sizeBefore = (await stat(path!)).size;
    await flipByte(path!, 16 + 2 * (16 + batches[0]!.length) + 4); // the length field of the third record
    const spool = await Spool.open({ dir: t.dir, maxBytes: 1 << 30, segmentBytes: 1 << 20 });
    try {
      expect((await stat(path!)).size).toBe(sizeBefore);
      expect(spool.stats().corruptRanges).toBe(1);
      const records = await readAll(spool);
      expect(records.map(firstLine)).toEqual(['line-0', 'line-10', 'line-30', 'line-40']);
      expect(spool.stats().pendingEntries).toBe(40);
    } finally {
      await spool.close();
    }
  });

  it('undoes a failed group write (EFBIG under ulimit -f) so the file stays whole and appends go on', async () => {
    expect(existsSync(BUILT_SPOOL), `${BUILT_SPOOL} is missing: run \`npm run build\` first`).toBe(true);
    const t = await tempDir('spool-efbig-');
    cleanups.push(t.cleanup);
    const writer = join(ROOT, 'test', 'helpers', 'spool-efbig-writer.mjs');
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('bash', ['-c', `ulimit -f 64 && exec "${process.execPath}" "${writer}" "${t.dir}"`], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`writer exited ${code}: ${stderr}`))));
    });
    const result = JSON.parse(out) as {
      acked: Array<{ fill: number; segment: number; offset: number }>;
      error?: { code: string; message: string };
      smallAfter: { segment: number; offset: number } | { error: string };
    };
    expect(result.error?.code).toBe(ErrorCode.SpoolCorrupt);
    expect(result.error?.message).toMatch(/EFBIG|too large/i);
    expect(result.acked.length).toBeGreaterThan(5);
    expect(result.smallAfter).toHaveProperty('offset');

    const spool = await Spool.open({ dir: t.dir, maxBytes: 1 << 30, segmentBytes: 1 << 20 });
    try {
      const records = await readAll(spool);
      expect(spool.stats().corruptRanges).toBe(0);
      expect(records.length).toBe(result.acked.length + 1);
      result.acked.forEach((a, i) => {
        expect(records[i]!.position).toEqual({ segment: a.segment, offset: a.offset });
        expect(records[i]!.data.equals(Buffer.alloc(4096, a.fill))).toBe(true);
      });
      expect(records[records.length - 1]!.data.toString()).toBe('small');
    } finally {
      await spool.close();
    }
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkBuilder } from '../../src/collector/chunk-builder.js';
import type { SealedChunk } from '../../src/collector/chunk-builder.js';
import { EMPTY_EVIDENCE, FINGERPRINT_BYTES } from '../../src/collector/file-identity.js';
import { FileRegistry } from '../../src/collector/file-registry.js';
import { FileTailer } from '../../src/collector/tail-file.js';
import type { DetachKind, TailerOptions } from '../../src/collector/tail-file.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import { LineFlag, decodeEntries, encodeBatchHeader } from '../../src/wire/entry-batch.js';
import type { Entry } from '../../src/wire/entry-batch.js';
import { MemoryFiles } from '../helpers/memory-files.js';

const DEFAULTS: TailerOptions = { maxLineBytes: 1024, multilineTimeoutMs: 1000, idleFlushMs: 5000, rotateWaitMs: 2000 };

/** Tailers on files in memory, a ManualClock, and a chunk builder that keeps what it seals. */
class Fixture {
  readonly clock = new ManualClock();
  readonly fs = new MemoryFiles();
  readonly chunks: SealedChunk[] = [];
  readonly registry = new FileRegistry(() => this.clock.now(), async () => undefined);
  readonly builder: ChunkBuilder;
  readonly buf = Buffer.allocUnsafe(64 * 1024);
  readonly detached: DetachKind[] = [];

  constructor(chunkBytes = 1 << 20) {
    this.builder = new ChunkBuilder(encodeBatchHeader('test-collector', []), { maxBytes: chunkBytes, timeoutMs: 1000 }, this.clock, (c) => this.chunks.push(c));
  }

  tail(path: string, options: Partial<TailerOptions> = {}): FileTailer {
    const fd = this.fs.open(path);
    const cursor = this.registry.newCursor({ path, dev: this.fs.dev, ino: this.fs.inoOf(path) }, 0, EMPTY_EVIDENCE);
    cursor.setHead(this.fs.content(path).subarray(0, FINGERPRINT_BYTES));
    return new FileTailer(fd, cursor, path, { ...DEFAULTS, onDetach: (_t, kind) => this.detached.push(kind), ...options }, this.clock, this.fs);
  }

  /** Writes `content` to `path`, tails it, and reads what is there. */
  async readFile(path: string, content: string): Promise<FileTailer> {
    this.fs.write(path, content);
    const t = this.tail(path);
    await this.step(t);
    return t;
  }

  step(t: FileTailer, limit?: number): ReturnType<FileTailer['step']> {
    return t.step(this.builder, this.buf, limit);
  }

  entries(): Entry[] {
    this.builder.seal();
    const out: Entry[] = [];
    for (const c of this.chunks) decodeEntries(c.payload, out);
    return out;
  }
}

describe('FileTailer.nextDeadlineMs (when an idle file must be looked at again)', () => {
  it('none for a file read to its end; the multiline, then the idle-flush deadline while an unterminated line is held; the rotate wait while draining', async () => {
    const fx = new Fixture();
    fx.fs.write('/l/a.log', 'one\ntwo\n');
    const t = fx.tail('/l/a.log');
    await fx.step(t);
    const start = fx.clock.now();
    expect(t.nextDeadlineMs(start)).toBeUndefined();
    fx.fs.append('/l/a.log', 'half a line');
    await fx.step(t);
    const grown = fx.clock.now();
    expect(t.nextDeadlineMs(grown)).toBe(grown + 1000);
    fx.clock.advance(1500);
    expect(t.nextDeadlineMs(fx.clock.now())).toBe(grown + 5000);
    fx.clock.advance(4000);
    await fx.step(t);
    // The unterminated line was sent (flagged) at the idle flush: nothing is held any more.
    expect(t.nextDeadlineMs(fx.clock.now())).toBeUndefined();
    fx.fs.append('/l/a.log', 'more\n');
    await fx.step(t);
    const regrown = fx.clock.now();
    t.drain('rename');
    expect(t.nextDeadlineMs(regrown)).toBe(regrown + 2000);
  });
});

describe('FileTailer.step() results (files in memory, virtual time)', () => {
  it('data: the entries and line bytes it cut; idle: nothing new, nothing counted', async () => {
    const fx = new Fixture();
    fx.fs.write('/l/a.log', 'one\ntwo\n');
    const t = fx.tail('/l/a.log');
    expect(await fx.step(t)).toEqual({ status: 'data', lines: 2, bytes: 6, splitPieces: 0 });
    fx.fs.append('/l/a.log', 'three\r\n');
    expect(await fx.step(t)).toEqual({ status: 'data', lines: 1, bytes: 5, splitPieces: 0 });
    expect(await fx.step(t)).toEqual({ status: 'idle', lines: 0, bytes: 0, splitPieces: 0 });
    expect(t.cursor.readOffset).toBe(15);
    expect(fx.entries().map((e) => [e.line.toString(), e.offset])).toEqual([['one', 0], ['two', 4], ['three', 8]]);
  });

  it('counts the pieces of an over-long line, each piece an entry', async () => {
    const fx = new Fixture();
    fx.fs.write('/l/a.log', 'abcdefghij\nok\n');
    const t = fx.tail('/l/a.log', { maxLineBytes: 4 });
    expect(await fx.step(t)).toEqual({ status: 'data', lines: 4, bytes: 12, splitPieces: 2 });
    expect(fx.entries().map((e) => e.flags)).toEqual([LineFlag.Partial, LineFlag.Partial, LineFlag.PartialLast, 0]);
  });

  it('counts every line once when chunks are sealed in the middle of the read', async () => {
    const fx = new Fixture(1024);
    fx.fs.write('/l/k.log', `${'z'.repeat(99)}\n`.repeat(40));
    const t = fx.tail('/l/k.log');
    expect(await fx.step(t)).toEqual({ status: 'data', lines: 40, bytes: 3960, splitPieces: 0 });
    fx.builder.seal();
    expect(fx.chunks.length).toBeGreaterThan(2);
    expect(fx.chunks.reduce((n, c) => n + c.entryCount, 0)).toBe(40);
  });

  it('a final line without newline is held until the file has been idle for idleFlushMs', async () => {
    const fx = new Fixture();
    fx.fs.write('/l/a.log', 'done\npart');
    const t = fx.tail('/l/a.log');
    expect((await fx.step(t)).lines).toBe(1);
    fx.clock.advance(4999);
    expect(await fx.step(t)).toEqual({ status: 'idle', lines: 0, bytes: 0, splitPieces: 0 });
    fx.clock.advance(1);
    expect(await fx.step(t)).toEqual({ status: 'data', lines: 1, bytes: 4, splitPieces: 0 });
    expect(fx.entries().at(-1)?.flags).toBe(LineFlag.NoNewline);
  });

  it('a read capped below a line is done again with the whole buffer', async () => {
    const fx = new Fixture();
    fx.fs.write('/l/long.log', `${'x'.repeat(30_000)}\n`);
    const t = fx.tail('/l/long.log', { maxLineBytes: 40_000 });
    expect(await fx.step(t, 8192)).toEqual({ status: 'data', lines: 1, bytes: 30_000, splitPieces: 0 });
    expect(t.cursor.readOffset).toBe(30_001);
  });

  it('truncated: the bytes before the read offset changed, even when the file regrew past it; nothing is cut', async () => {
    const fx = new Fixture();
    const t = await fx.readFile('/l/c.log', 'aaaa\nbbbb\n');
    fx.fs.truncate('/l/c.log');
    fx.fs.append('/l/c.log', 'xxxxxxxxxxxxxxxxxxxxxxxxx\n');
    expect(await fx.step(t)).toEqual({ status: 'truncated', lines: 0, bytes: 0, splitPieces: 0 });
    expect(t.cursor.readOffset).toBe(10);
  });

  it('check(), while reading is paused: a file shorter than seen, or with other bytes before the offset, is truncated', async () => {
    const fx = new Fixture();
    const t = await fx.readFile('/l/c.log', 'aaaa\nbbbb\n');
    fx.fs.append('/l/c.log', 'cccc\n');
    expect(await t.check()).toBe('ok');
    expect(t.cursor.seenSize).toBe(15);
    fx.fs.truncate('/l/c.log', 12);
    expect(await t.check()).toBe('truncated');
    fx.fs.write('/l/c.log', 'aaaa\nBBBB\ncccc\n');
    expect(await t.check()).toBe('truncated');
  });

  it('renamed away: told once, drained through the descriptor, finished rotateWaitMs after its last growth', async () => {
    const fx = new Fixture();
    const t = await fx.readFile('/l/r.log', 'old1\n');
    fx.fs.rename('/l/r.log', '/l/r.log.1');
    fx.fs.write('/l/r.log', 'new1\n');
    expect((await fx.step(t)).status).toBe('idle');
    expect([t.state, t.detachKind]).toEqual(['draining', 'rename']);
    fx.fs.append('/l/r.log.1', 'old2\n');
    expect((await fx.step(t)).status).toBe('data');
    expect((await fx.step(t)).status).toBe('idle');
    fx.clock.advance(1999);
    expect((await fx.step(t)).status).toBe('idle');
    fx.clock.advance(1);
    expect((await fx.step(t)).status).toBe('finished');
    expect(fx.detached).toEqual(['rename']);
    expect(fx.entries().map((e) => e.line.toString())).toEqual(['old1', 'old2']);
  });

  it('deleted: told as a deletion (no links left)', async () => {
    const fx = new Fixture();
    const t = await fx.readFile('/l/d.log', 'one\n');
    fx.fs.unlink('/l/d.log');
    expect((await fx.step(t)).status).toBe('idle');
    expect(fx.detached).toEqual(['delete']);
    t.attach('/l/d.log');
    expect([t.state, t.detachKind]).toEqual(['active', undefined]);
  });

  it('two files read in turns through one shared buffer, in reads of any size, into chunks of any size: every line once, as the file holds it (LineBlocks held as views of that buffer) (property)', async () => {
    let blockChunks = 0;
    const arbFile = fc.array(fc.string({ maxLength: 40 }).map((l) => l.replace(/[\r\n]/g, '')), { minLength: 1, maxLength: 60 });
    await fc.assert(
      fc.asyncProperty(arbFile, arbFile, fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 64, max: 600 })), { minLength: 1, maxLength: 40 }), fc.integer({ min: 300, max: 4096 }), async (a, b, steps, chunkBytes) => {
        const fx = new Fixture(chunkBytes);
        const files = [
          { path: '/l/a.log', lines: a },
          { path: '/l/b.log', lines: b },
        ];
        const tailers = files.map((f) => {
          fx.fs.write(f.path, f.lines.map((l) => `${l}\n`).join(''));
          return fx.tail(f.path);
        });
        const size = (i: number): number => fx.fs.content(files[i]!.path).length;
        // The steps drawn, then each file to its end.
        for (const [first, limit] of steps) await fx.step(tailers[first ? 0 : 1]!, limit);
        for (let i = 0; i < 2; i++) while (tailers[i]!.cursor.readOffset < size(i)) await fx.step(tailers[i]!, 256);
        const entries = fx.entries();
        for (const f of files) {
          let offset = 0;
          const expected = f.lines.map((l) => {
            const at = offset;
            offset += Buffer.byteLength(l) + 1;
            return [l, at];
          });
          expect(entries.filter((e) => e.source.path === f.path).map((e) => [e.line.toString(), e.offset])).toEqual(expected);
        }
        blockChunks += fx.chunks.filter((c) => c.lineBlocks === true).length;
      }),
      { numRuns: 150 },
    );
    // The runs wrote LineBlocks (not only Lines): the views were held across what they drew.
    expect(blockChunks).toBeGreaterThan(50);
  });
});

import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkBuilder } from '../../src/collector/chunk-builder.js';
import type { SealedChunk } from '../../src/collector/chunk-builder.js';
import { EMPTY_EVIDENCE } from '../../src/collector/file-identity.js';
import { FileRegistry } from '../../src/collector/file-registry.js';
import { FileTailer } from '../../src/collector/tail-file.js';
import type { TailerOptions } from '../../src/collector/tail-file.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import { decodeEntries, encodeBatchHeader } from '../../src/wire/entry-batch.js';
import type { Entry } from '../../src/wire/entry-batch.js';

/** A real temp dir, a ManualClock, a chunk builder that keeps sealed chunks, and tailers on real files. */
export class TailFixture {
  readonly dir = mkdtempSync(join(tmpdir(), 'mc-tail-'));
  readonly clock = new ManualClock();
  readonly chunks: SealedChunk[] = [];
  readonly registry = new FileRegistry(() => this.clock.now());
  readonly builder: ChunkBuilder;
  readonly buf: Buffer;
  private readonly fds: number[] = [];

  constructor(
    readonly options: TailerOptions = { maxLineBytes: 1024, multilineTimeoutMs: 1000, idleFlushMs: 5000, rotateWaitMs: 2000 },
    chunkBytes = 1 << 20,
    readBufferBytes = 64 * 1024,
  ) {
    this.builder = new ChunkBuilder(encodeBatchHeader('test-collector', []), { maxBytes: chunkBytes, timeoutMs: 1000 }, this.clock, (c) => this.chunks.push(c));
    this.buf = Buffer.allocUnsafe(readBufferBytes);
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Opens `name` and tails it from `offset` as a new file. */
  tail(name: string, offset = 0): FileTailer {
    const path = this.path(name);
    const fd = openSync(path, 'r');
    this.fds.push(fd);
    const st = fstatSync(fd);
    const head = Buffer.alloc(1024);
    const n = readSync(fd, head, 0, 1024, 0);
    const cursor = this.registry.newCursor({ path, dev: st.dev, ino: st.ino }, offset, EMPTY_EVIDENCE);
    cursor.setHead(head.subarray(0, n));
    return new FileTailer(fd, cursor, path, this.options, this.clock);
  }

  /** Seals the current chunk and returns every entry shipped so far. */
  entries(): Entry[] {
    this.builder.seal();
    const out: Entry[] = [];
    for (const c of this.chunks) decodeEntries(c.payload, out);
    return out;
  }

  lines(): string[] {
    return this.entries().map((e) => e.line.toString());
  }

  cleanup(): void {
    this.builder.close();
    for (const fd of this.fds) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

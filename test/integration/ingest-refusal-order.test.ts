import { closeSync, mkdtempSync, openSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IngestService } from '../../src/aggregator/ingest-service.js';
import { ErrorCode } from '../../src/errors.js';
import { Spool } from '../../src/spool/spool.js';
import type { ChunkMessage } from '../../src/wire/grpc-api.js';
import { FakeShipCall } from '../helpers/fake-ship-call.js';
import { buildEntries } from '../helpers/ingest-client.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Stream order across RESOURCE_EXHAUSTED with the real spool (the flaky collector-backpressure run:
 * a smaller chunk stored ahead of a bigger one refused just before it). Deterministic: the chunks
 * are handed to the ingest service in one tick, as grpc-js may deliver them, with no timing involved.
 */
const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mc-refusal-order-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A chunk of `lines` lines of 1000 bytes of `fill`. */
function chunk(sequence: number, fill: string, lines: number): ChunkMessage {
  const data = Buffer.alloc(1000, fill);
  return { sequence, ...buildEntries(Array.from({ length: lines }, (_, i) => ({ data, offset: i * 1001 }))) };
}

const limits = { maxChunkBytes: 4 * MiB, maxLineBytes: 4 * MiB, maxEntriesPerChunk: 100_000, maxTags: 4, maxTagBytes: 256 };

/** Until `acks` acks are written (the first waits for a real fdatasync). */
async function settled(call: FakeShipCall, acks: number): Promise<void> {
  await waitFor(() => Promise.resolve(call.written.length >= acks), { timeoutMs: 30_000, intervalMs: 10, what: `${acks} acks` });
}

describe('ingest: stream order when the spool refuses', () => {
  it('a smaller chunk behind one the spool refuses (room taken by appends in flight) is refused too, not stored ahead of it', async () => {
    const dir = tempDir();
    const maxBytes = 4 * MiB;
    const spool = await Spool.open({ dir, maxBytes, minFreeBytes: 0 });
    cleanups.push(() => spool.close());
    const service = new IngestService({ sink: spool, limits, deadLetters: { add: () => Promise.resolve() }, maxSpoolBytes: maxBytes });
    const call = new FakeShipCall();
    service.ship(call as never);
    // Each passes the bound against the bytes on disk; the second does not fit beside the first,
    // which is still being written; the third would.
    call.emit('data', chunk(1, 'a', 2500));
    call.emit('data', chunk(2, 'b', 2000));
    call.emit('data', chunk(3, 'c', 100));
    await settled(call, 3);
    expect(call.written.map((a) => [a.sequence, a.code])).toEqual([
      [1, 'OK'],
      [2, 'RESOURCE_EXHAUSTED'],
      [3, 'RESOURCE_EXHAUSTED'],
    ]);
    expect(spool.stats().appendedRecords).toBe(1);
  });

  it('a group write that fails for a full disk fails the appends queued behind it too (none lands before the refused one)', async () => {
    const dir = tempDir();
    const volume = join(dir, 'vol');
    cleanups.push(await mountTmpfs(volume, '4m'));
    // The spool believes there is room (an injected volume reading), so the disk itself says ENOSPC.
    const spool = await Spool.open({
      dir: join(volume, 'spool'),
      maxBytes: 1024 * MiB,
      minFreeBytes: 0,
      segmentBytes: 64 * MiB,
      statVolume: () => Promise.resolve({ totalBytes: 1024 * MiB, availableBytes: 1024 * MiB }),
    });
    cleanups.push(() => spool.close());
    // Fill the volume, then free 64 KiB: room for a small record, not for a 512 KiB one.
    const filler = join(volume, 'filler');
    const fd = openSync(filler, 'w');
    try {
      const block = Buffer.alloc(4 * KiB, 0x66);
      for (;;) writeSync(fd, block);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      closeSync(fd);
    }
    truncateSync(filler, statSync(filler).size - 64 * KiB);

    const big = spool.append(Buffer.alloc(512 * KiB, 0x62), 1);
    // Let the flush loop take the first group and start writing it (only microtasks: no I/O completes).
    for (let i = 0; i < 20; i++) await Promise.resolve();
    const small = spool.append(Buffer.alloc(4 * KiB, 0x73), 1);
    const [b, s] = await Promise.allSettled([big, small]);
    expect(b).toMatchObject({ status: 'rejected', reason: { code: ErrorCode.SpoolFull } });
    expect(s).toMatchObject({ status: 'rejected', reason: { code: ErrorCode.SpoolFull } });
    expect(spool.stats().appendedRecords).toBe(0);
    // The spool is usable again: the small record fits in the room left.
    await expect(spool.append(Buffer.alloc(4 * KiB, 0x73), 1)).resolves.toMatchObject({ segment: expect.any(Number) });
  });
});

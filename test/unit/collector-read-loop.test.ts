import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { ChunkBuilder } from '../../src/collector/chunk-builder.js';
import { EMPTY_EVIDENCE, FINGERPRINT_BYTES, HASH_WINDOW } from '../../src/collector/file-identity.js';
import { FileRegistry } from '../../src/collector/file-registry.js';
import { ReadLoop } from '../../src/collector/read-loop.js';
import { FileTailer } from '../../src/collector/tail-file.js';
import { createCollectorMetrics } from '../../src/telemetry/collector-metrics.js';
import type { TimerHandle } from '../../src/util/clock.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import { encodeBatchHeader } from '../../src/wire/entry-batch.js';
import { MemoryFiles } from '../helpers/memory-files.js';

/** A ManualClock that counts the timers set. */
class CountingClock extends ManualClock {
  set = 0;
  override setTimeout(fn: () => void, ms: number): TimerHandle {
    this.set++;
    return super.setTimeout(fn, ms);
  }
}

/** Files in memory that count the reads of steps (64 KiB here; a check reads at most HASH_WINDOW) and fstats. */
class CountingFiles extends MemoryFiles {
  reads = 0;
  fstats = 0;
  override read(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    if (length > HASH_WINDOW) this.reads++;
    return super.read(fd, buf, offset, length, position);
  }
  override fstat(fd: number): Promise<{ size: number; nlink: number }> {
    this.fstats++;
    return super.fstat(fd);
  }
}

const POLL_MS = 250;

/**
 * One busy file, a read loop whose reading pauses after every read (the in-flight budget used up)
 * until the test "acknowledges" (allows one more read and wakes the loop), as the collector does.
 */
async function pausedLoop(): Promise<{ clock: CountingClock; fs: CountingFiles; loop: ReadLoop; ack: () => Promise<void> }> {
  const clock = new CountingClock();
  const fs = new CountingFiles();
  fs.write('/l/a.log', `${'x'.repeat(99)}\n`.repeat(100_000));
  const registry = new FileRegistry(() => clock.now(), async () => undefined);
  const cursor = registry.newCursor({ path: '/l/a.log', dev: fs.dev, ino: fs.inoOf('/l/a.log') }, 0, EMPTY_EVIDENCE);
  cursor.setHead(fs.content('/l/a.log').subarray(0, FINGERPRINT_BYTES));
  const tailer = new FileTailer(fs.open('/l/a.log'), cursor, '/l/a.log', { maxLineBytes: 1024, multilineTimeoutMs: 1000, idleFlushMs: 5000, rotateWaitMs: 2000 }, clock, fs);
  let allowedUntil = 1;
  const builder = new ChunkBuilder(encodeBatchHeader('c', []), { maxBytes: 64 * 1024, timeoutMs: 1000 }, clock, (c) => {
    for (const r of c.ranges) r.cursor.ack(r);
  });
  const loop = new ReadLoop({
    clock,
    log: pino({ level: 'silent' }),
    metrics: createCollectorMetrics(),
    pollIntervalMs: POLL_MS,
    maxInflightBytes: 64 * 1024,
    maxLineBytes: 1024,
    tailers: new Map([['1:1', tailer]]),
    inflightBytes: () => 0,
    // Reading pauses once the allowed read is done.
    paused: () => fs.reads >= allowedUntil,
    truncated: () => undefined,
    finish: async () => undefined,
  });
  loop.start(builder);
  await clock.advanceAsync(0);
  const ack = async (): Promise<void> => {
    allowedUntil = fs.reads + 1;
    loop.wake();
    await clock.advanceAsync(1);
  };
  return { clock, fs, loop, ack };
}

describe('ReadLoop while acknowledgements pace the reading', () => {
  it('sets no timer per wake-up (one poll timer stays armed)', async () => {
    const { clock, fs, loop, ack } = await pausedLoop();
    expect(fs.reads).toBe(1);
    const timers = clock.set;
    for (let i = 0; i < 50; i++) await ack();
    expect(fs.reads).toBe(51);
    // 50 wake-ups in 50 ms: at most the one poll timer was armed again.
    expect(clock.set - timers).toBeLessThanOrEqual(1);
    await loop.stop();
  });

  it('still checks a paused file for truncation every poll interval when nothing is read', async () => {
    const { clock, fs, loop } = await pausedLoop();
    const fstats = fs.fstats;
    await clock.advanceAsync(10 * POLL_MS, 10);
    expect(fs.reads - 1).toBeGreaterThanOrEqual(0);
    expect(fs.fstats - fstats).toBeGreaterThanOrEqual(8);
    expect(fs.fstats - fstats).toBeLessThanOrEqual(11);
    await loop.stop();
  });
});

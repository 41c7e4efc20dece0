import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, statfsSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, McError } from '../../src/errors.js';
import { Spool } from '../../src/spool/spool.js';
import type { SpoolRecord } from '../../src/spool/spool.js';
import { runAggregator, startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { checkDelivery, readDelivered } from '../helpers/collector-delivery.js';
import { LogWriter } from '../helpers/collector-log-writer.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { makeBatch } from '../helpers/spool-fixtures.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { restartablePort } from '../helpers/free-port.js';
import { tryWaitFor } from '../helpers/wait-for.js';

/**
 * Issue 8, case 4: a spool on a volume smaller than one segment (20 MiB tmpfs, default 64 MiB
 * segments). Real aggregator and collector processes, uniquely numbered lines, counted at the end.
 * Needs root to mount the tmpfs (CI runs as root): without it the tests fail and say so.
 */

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Lines in a file, counted by newline bytes (cheap enough to poll on a 50 MB output). */
function countLines(path: string): number {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch {
    return 0;
  }
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

interface Volume {
  readonly dir: string;
  readonly spool: string;
  readonly logs: string;
  readonly state: string;
  readonly out: string;
}

async function smallVolume(size = '20m'): Promise<Volume> {
  const dir = mkdtempSync(join(tmpdir(), 'mc-small-vol-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const spool = join(dir, 'spool');
  cleanups.push(await mountTmpfs(spool, size));
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  return { dir, spool, logs, state: join(dir, 'state'), out: join(dir, 'out.jsonl') };
}

/** Writes to `path` until the volume is full. */
function fillVolume(path: string): void {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(4096, 0x66);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

async function start(env: Record<string, string>): Promise<AggregatorProcess> {
  const a = await startAggregator({ env });
  cleanups.push(async () => {
    await a.kill();
  });
  return a;
}

async function collect(v: Volume, address: string): Promise<CollectorProcess> {
  const c = await startCollector({
    ...FAST_COLLECTOR_ENV,
    COLLECTOR_REMOTE_ADDRESS: address,
    COLLECTOR_FILES: join(v.logs, '*.log'),
    COLLECTOR_STATE_DIR: v.state,
    COLLECTOR_BUFFER_MAX_BYTES: '256KiB',
  });
  cleanups.push(async () => {
    await c.kill();
  });
  return c;
}

describe('spool on a volume smaller than one segment (20 MiB tmpfs, default 64 MiB segments)', () => {
  it('keeps delivery moving while far more than the volume holds (shared with another program) passes through, refusing with RESOURCE_EXHAUSTED instead of ENOSPC, across a restart', async () => {
    const v = await smallVolume();
    const port = await restartablePort();
    const env = {
      AGGREGATOR_LISTEN_ADDRESS: `127.0.0.1:${port}`,
      AGGREGATOR_SPOOL_DIR: v.spool,
      AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: v.out, format: 'json' }),
      // Batches wait up to 6 s: ingest outruns delivery and the volume fills between emits.
      AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '6s',
      AGGREGATOR_MAX_BATCH_SIZE: '1000000',
    };
    // Another program holds 13 MiB of the volume: the spool has ~6 MiB above the 1 MiB reserve, about
    // one 5 MiB segment, so the segment being written must be released as well as the sealed ones.
    const filler = join(v.dir, 'spool', 'someone-else');
    writeFileSync(filler, Buffer.alloc(13 * MiB));
    let aggregator = await start(env);
    const opened = await aggregator.waitForLog((r) => r.msg === 'spool: opened');
    expect(Number(opened.segmentBytes)).toBeLessThanOrEqual(5 * MiB);
    const collector = await collect(v, aggregator.address);

    // ~230 bytes a line; 150,000 lines = ~33 MiB of lines (more with the wire framing): well over the volume.
    const writer = new LogWriter(v.logs, 'p'.repeat(210));
    let refused = 0;
    let minFree = Number.MAX_SAFE_INTEGER;
    const watchFree = setInterval(() => (minFree = Math.min(minFree, freeBytes(v.spool))), 20);
    cleanups.push(() => clearInterval(watchFree));
    // 23 MiB at once: more than the volume holds before the first batch is due.
    for (let i = 0; i < 100; i++) writer.append(`f${i % 3}`, 1_000);
    await tryWaitFor(async () => (await aggregator.metric('mega_aggregator_chunks_refused_total', { reason: 'spool_full' })) > 0, { timeoutMs: 20_000, intervalMs: 100, what: 'a chunk refused for spool_full' });
    // Restart on the full spool in the middle of it.
    refused += await aggregator.metric('mega_aggregator_chunks_refused_total', { reason: 'spool_full' });
    expect(await aggregator.stop()).toBe(0);
    const firstLogs = aggregator.logs;
    aggregator = await start(env);
    for (let round = 0; round < 20; round++) {
      writer.append(`f${round % 3}`, 2_500);
      await sleep(100);
    }
    const written = writer.written;
    const allThere = await tryWaitFor(() => countLines(v.out) >= written.length, { timeoutMs: 180_000, intervalMs: 1000, what: 'every written line in the output' });
    refused += await aggregator.metric('mega_aggregator_chunks_refused_total', { reason: 'spool_full' });
    const delivered = readDelivered(v.out);
    const report = checkDelivery(written, delivered);
    const logs = [...firstLogs, ...aggregator.logs].join('\n');
    const released = logs.split('\n').filter((l) => l.includes('the active segment is fully delivered; rolled')).length;
    console.log(
      `20 MiB spool volume: ${report.expected} lines written (${(written.length * 231) / MiB | 0} MiB), ${report.delivered} delivered, ` +
        `${report.missing.length} lost, ${report.duplicates} duplicates, ${refused} chunks refused with RESOURCE_EXHAUSTED, ` +
        `least free on the volume ${minFree} bytes, active segment released ${released} times`,
    );
    expect(allThere, `delivery stalled at ${countLines(v.out)} of ${written.length} lines`).toBe(true);
    expect(report.missing.length).toBe(0);
    expect(report.unexpected).toEqual([]);
    expect(report.foreignDuplicates).toEqual([]);
    expect(report.orderViolations.slice(0, 5)).toEqual([]);
    // The volume did fill, and it was admission that said so, not the file system.
    expect(refused).toBeGreaterThan(0);
    expect(logs).not.toMatch(/ENOSPC/);
    await collector.stop();
    expect(await aggregator.stop()).toBe(0);
  }, 300_000);

  it('a spool that a full volume stalled (a fully delivered active segment filling it) is released at start, and appends go on', async () => {
    const v = await smallVolume();
    // Build the stalled state as the old spool left it: one 64 MiB-sized active segment on a 20 MiB
    // volume, filled until ENOSPC (free-space admission blinded by a fake volume), then delivered.
    const old = await Spool.open({
      dir: v.spool,
      maxBytes: 1024 * MiB,
      segmentBytes: 64 * MiB,
      minFreeBytes: 0,
      statVolume: () => Promise.resolve({ totalBytes: 1024 * 1024 * MiB, availableBytes: 1024 * 1024 * MiB }),
    });
    let appended = 0;
    let full: unknown;
    for (let i = 0; full === undefined; i++) {
      await old.append(makeBatch(i * 1000, 1000, 'old', 200), 1000).then(
        () => appended++,
        (err: unknown) => (full = err),
      );
    }
    expect(full).toBeInstanceOf(McError);
    expect((full as McError).code).toBe(ErrorCode.SpoolFull);
    expect((full as McError).message).toMatch(/ENOSPC/);
    const reader = old.reader();
    let last: SpoolRecord | undefined;
    for (let i = 0; i < appended; i++) last = await reader.next(AbortSignal.timeout(10_000));
    old.markDelivered({ ...(last as SpoolRecord).next, entry: 0 });
    await old.close();
    const segs = readdirSync(v.spool).filter((n) => n.endsWith('.seg'));
    expect(segs).toHaveLength(1);
    // And what little the last append left free, another program takes but one page (for the
    // aggregator's lock file): not even a new segment's first block fits, so the delivered segment
    // must be released in place.
    fillVolume(join(v.spool, 'filler'));
    truncateSync(join(v.spool, 'filler'), statSync(join(v.spool, 'filler')).size - 4096);
    expect(freeBytes(v.spool)).toBe(4096);

    const aggregator = await start({
      AGGREGATOR_SPOOL_DIR: v.spool,
      AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: v.out, format: 'json' }),
      AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
    });
    const collector = await collect(v, aggregator.address);
    const writer = new LogWriter(v.logs, 'p'.repeat(100));
    for (let i = 0; i < 20; i++) writer.append('after', 1000);
    const allThere = await tryWaitFor(() => countLines(v.out) >= writer.written.length, { timeoutMs: 60_000, intervalMs: 500, what: 'every written line in the output' });
    const report = checkDelivery(writer.written, readDelivered(v.out));
    console.log(
      `stalled spool restarted: ${appended} records filled the volume; then ${report.expected} lines written, ` +
        `${report.delivered} delivered, ${report.missing.length} lost, free now ${freeBytes(v.spool)} bytes`,
    );
    expect(allThere, `delivery stalled at ${countLines(v.out)} of ${writer.written.length} lines`).toBe(true);
    expect(report.missing.length).toBe(0);
    expect(report.duplicates).toBe(0);
    expect(freeBytes(v.spool)).toBeGreaterThan(10 * MiB);
    expect(aggregator.logs.join('\n')).toMatch(/truncated the fully delivered active segment/);
    await collector.stop();
    expect(await aggregator.stop()).toBe(0);
  }, 120_000);

  it('refuses to start (exit 2, one line naming the variable) when the free-space reserve leaves no room on the volume', async () => {
    const v = await smallVolume();
    const run = await runAggregator({ AGGREGATOR_SPOOL_DIR: v.spool, AGGREGATOR_SPOOL_MIN_FREE_BYTES: '20MiB' });
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n').at(-1)).toMatch(
      /^mega-aggregator: invalid configuration: AGGREGATOR_SPOOL_MIN_FREE_BYTES: keeping 20971520 bytes free leaves no room on the spool's volume of 20971520 bytes/,
    );
  });
});

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { checkDelivery, readDelivered } from '../helpers/collector-delivery.js';
import { LogWriter } from '../helpers/collector-log-writer.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { tryWaitFor, waitFor } from '../helpers/wait-for.js';
import { killAndRemove } from '../helpers/tear-down.js';

/**
 * Several files written continuously while they are rotated by rename+create and by copytruncate:
 * every line arrives at the real aggregator's file emitter exactly once, each file in offset order.
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});


describe('collector rotation under continuous writing', () => {
  it('delivers every line exactly once, in per-file order, through rename and copytruncate rotations', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-rot-'));
    const logs = join(dir, 'logs');
    const out = join(dir, 'out.jsonl');
    const writer = new LogWriter(logs);
    mkdirSync(logs);
    aggregator = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
      },
    });
    for (const s of ['alpha', 'beta', 'gamma']) writer.append(s, 50);
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_REMOTE_ADDRESS: aggregator.address,
      COLLECTOR_FILES: join(logs, '*.log*'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
    });
    for (let round = 1; round <= 60; round++) {
      for (const s of ['alpha', 'beta', 'gamma']) writer.append(s, 40);
      if (round % 12 === 4) writer.rotateRename('alpha');
      if (round % 12 === 9) {
        // Each truncation is seen before the next: two copytruncates within one poll would look like
        // one to any poller (the lines in between are then read from the copy, but the count is one).
        const seen = await collector.metric('mega_collector_rotations_total', { kind: 'copytruncate' });
        writer.rotateCopyTruncate('beta');
        await waitFor(async () => (await collector!.metric('mega_collector_rotations_total', { kind: 'copytruncate' })) > seen, {
          timeoutMs: 10_000,
          intervalMs: 20,
          what: 'the collector to notice the copytruncate of beta.log',
        });
      }
      if (round % 20 === 10) writer.rotateRename('gamma');
      await new Promise((r) => setTimeout(r, 15));
    }
    const written = writer.written;
    const arrived = await tryWaitFor(() => new Set(readDelivered(out).map((d) => d.line)).size >= written.length, { timeoutMs: 40_000, intervalMs: 200, what: 'every written line delivered' });
    // A little longer, so late duplicates (if any) would show up.
    await new Promise((r) => setTimeout(r, 500));
    const report = checkDelivery(written, readDelivered(out));
    console.log(`rotation: ${report.expected} lines written, ${report.delivered} delivered, ${report.duplicates} duplicates`);
    expect(report.missing.slice(0, 5)).toEqual([]);
    expect(arrived).toBe(true);
    expect(report.unexpected).toEqual([]);
    expect(report.duplicates).toBe(0);
    expect(report.orderViolations.slice(0, 5)).toEqual([]);
    expect(await collector.metric('mega_collector_rotations_total', { kind: 'rename' })).toBeGreaterThanOrEqual(5);
    expect(await collector.metric('mega_collector_rotations_total', { kind: 'copytruncate' })).toBeGreaterThanOrEqual(5);
    expect(await collector.stop()).toBe(0);
  });

  it('rotated names outside the globs: the renamed file is drained through its descriptor, then the new one read', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-rot-'));
    const logs = join(dir, 'logs');
    const out = join(dir, 'out.jsonl');
    mkdirSync(logs);
    const writer = new LogWriter(logs);
    aggregator = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
      },
    });
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_ROTATE_WAIT: '300ms',
      COLLECTOR_REMOTE_ADDRESS: aggregator.address,
      COLLECTOR_FILES: join(logs, '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
    });
    // A file renamed out of the globs before the collector ever opened it cannot be read by anyone;
    // real rotations are hours apart, here they are ~100 ms apart, so after each rotation the writer
    // waits until the collector has opened the new file (it keeps writing the other file meanwhile).
    const opened = (path: string): number => collector?.logs.filter((l) => l.includes('"tailing new file"') && l.includes(`"path":"${path}"`)).length ?? 0;
    // The first file of each stream likewise: it is created by the first append, and blue's is
    // renamed away four rounds later.
    const rotatedAt = new Map<string, number>([
      ['red', 0],
      ['blue', 0],
    ]);
    for (let round = 1; round <= 40; round++) {
      for (const s of ['red', 'blue']) {
        writer.append(s, 50);
        const seen = rotatedAt.get(s);
        if (seen !== undefined) {
          await tryWaitFor(() => opened(writer.path(s)) > seen, { timeoutMs: 10_000, intervalMs: 5, what: "the collector to open the rotated file's successor" });
          rotatedAt.delete(s);
        }
      }
      if (round % 8 === 0) {
        rotatedAt.set('red', opened(writer.path('red')));
        writer.rotateRename('red', 10);
      }
      if (round % 10 === 5) {
        rotatedAt.set('blue', opened(writer.path('blue')));
        writer.rotateRename('blue', 10);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const written = writer.written;
    await tryWaitFor(() => new Set(readDelivered(out).map((d) => d.line)).size >= written.length, { timeoutMs: 30_000, intervalMs: 200, what: 'every written line delivered' });
    await new Promise((r) => setTimeout(r, 500));
    const report = checkDelivery(written, readDelivered(out));
    console.log(`rotation outside globs: ${report.expected} lines written, ${report.delivered} delivered, ${report.duplicates} duplicates`);
    expect(report.missing.slice(0, 5)).toEqual([]);
    expect(report.duplicates).toBe(0);
    expect(report.orderViolations.slice(0, 5)).toEqual([]);
    // Finished rotated files are closed: only the live file stays open (red.log was rotated away in
    // the last round and not written again).
    await waitFor(async () => (await collector?.metric('mega_collector_open_files')) === 1, { timeoutMs: 5000, intervalMs: 100, what: 'only the live file open' });
    expect(await collector.stop()).toBe(0);
  });
});

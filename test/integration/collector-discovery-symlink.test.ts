import { appendFileSync, mkdirSync, mkdtempSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { checkDelivery, readDelivered } from '../helpers/collector-delivery.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { tryWaitFor } from '../helpers/wait-for.js';
import { killAndRemove } from '../helpers/tear-down.js';

/**
 * Symlinks created before their targets (a common layout: /var/log/app.log -> the app's current
 * log), with the default 10 s rescan: the collector must open the target as soon as it appears,
 * follow it through a rotation whose rotated name no glob matches and that is deleted soon after,
 * and lose nothing (real collector and aggregator processes, numbered lines).
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('collector discovery of symlinked files', () => {
  it('regression: a dangling symlink (at start-up and created later) is read from the moment its target appears, through rotations: lost = 0', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-link-'));
    const logs = join(dir, 'logs');
    const data = join(dir, 'data');
    const out = join(dir, 'out.jsonl');
    mkdirSync(logs);
    mkdirSync(data);
    aggregator = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
      },
    });
    symlinkSync(join(data, 'early.log'), join(logs, 'early.log'));
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_RESCAN_INTERVAL: '10s',
      COLLECTOR_REMOTE_ADDRESS: aggregator.address,
      COLLECTOR_FILES: join(logs, '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
    });
    symlinkSync('../data/late/late.log', join(logs, 'late.log'));
    const written: string[] = [];
    const write = (target: string, stream: string, from: number, count: number): void => {
      const lines: string[] = [];
      for (let i = from; i < from + count; i++) lines.push(`${stream} ${String(i).padStart(8, '0')} ${'p'.repeat(60)}`);
      appendFileSync(target, `${lines.join('\n')}\n`);
      written.push(...lines);
    };
    mkdirSync(join(data, 'late'));
    const targets = { early: join(data, 'early.log'), late: join(data, 'late', 'late.log') };
    let seq = 0;
    // Three generations of each target, 1 s each, 2,000 lines/s; each rotated name is deleted 200 ms
    // after the rotation (the old collector found the links only at the 10 s rescan: everything before
    // it was lost).
    for (let gen = 0; gen < 3; gen++) {
      for (let tick = 0; tick < 20; tick++) {
        for (const [name, path] of Object.entries(targets)) write(path, `${name}-g${gen}`, seq, 100);
        seq += 100;
        await sleep(50);
      }
      for (const path of Object.values(targets)) renameSync(path, `${path}.old`);
      await sleep(200);
      for (const path of Object.values(targets)) unlinkSync(`${path}.old`);
    }
    const t0 = Date.now();
    await tryWaitFor(() => new Set(readDelivered(out).map((d) => d.line)).size >= written.length, { timeoutMs: 15_000, intervalMs: 200, what: 'every written line delivered' });
    console.log(`delivered ${Date.now() - t0} ms after the last write`);
    await sleep(300);
    const report = checkDelivery(written, readDelivered(out));
    console.log(`symlinks: ${report.expected} lines written, ${report.delivered} delivered, ${report.missing.length} lost, ${report.duplicates} duplicated`);
    expect(report.missing.length).toBe(0);
    expect(report.duplicates).toBe(0);
    expect(report.unexpected).toEqual([]);
    expect(report.orderViolations).toEqual([]);
    expect(await collector.stop()).toBe(0);
  });
});

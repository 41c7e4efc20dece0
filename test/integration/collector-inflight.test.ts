import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { checkDelivery, readDelivered } from '../helpers/collector-delivery.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { restartablePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';
import { killAndRemove } from '../helpers/tear-down.js';

/**
 * COLLECTOR_MAX_INFLIGHT_BYTES holds to within one read: the collector checks the budget before
 * each read and reads no more than min(1 MiB, bound) bytes at a time (less when the budget is nearly
 * used up). Measured through mega_collector_inflight_peak_bytes, the high-water mark of bytes read
 * and not acknowledged, while the aggregator is away and then while it catches up.
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});

const KiB = 1024;
const BOUND = 64 * KiB;
/** One read: min(1 MiB, bound). */
const ONE_READ = Math.min(1024 * KiB, BOUND);

describe('collector in-flight bound', () => {
  it('regression: with COLLECTOR_MAX_INFLIGHT_BYTES=64KiB the peak of unacknowledged bytes stays within one read of the bound, and nothing is lost', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-inflight-'));
    const logs = join(dir, 'logs');
    const out = join(dir, 'out.jsonl');
    mkdirSync(logs);
    // Three files of ~300 kB each, on disk before the collector starts: the old pump read a whole
    // 1 MiB buffer per step, so one step took a whole file past the 64 KiB budget.
    const written: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      const lines: string[] = [];
      for (let i = 0; i < 3000; i++) lines.push(`${name} ${String(i).padStart(8, '0')} ${'x'.repeat(88)}`);
      appendFileSync(join(logs, `${name}.log`), `${lines.join('\n')}\n`);
      written.push(...lines);
    }
    // A line longer than the smallest read (16 KiB) is read whole. (Chunks, and so lines, are capped at
    // the in-flight bound when it is smaller than COLLECTOR_BUFFER_MAX_BYTES, so no line exceeds it.)
    // Sorted after a, b and c, it is read only once they are acknowledged (after the away phase).
    const long = `long ${'L'.repeat(40 * KiB)}`;
    appendFileSync(join(logs, 'd.log'), `d first\n${long}\nd last\n`);
    written.push('d first', long, 'd last');
    const port = await restartablePort();
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_REMOTE_ADDRESS: `127.0.0.1:${port}`,
      COLLECTOR_FILES: join(logs, '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
      COLLECTOR_MAX_INFLIGHT_BYTES: '64KiB',
    });
    await waitFor(async () => (await collector?.metric('mega_collector_reading_paused')) === 1, { timeoutMs: 10_000, intervalMs: 50, what: 'the collector to pause reading' });
    // Let it try to read more for a while.
    await new Promise((r) => setTimeout(r, 500));
    const peakAway = await collector.metric('mega_collector_inflight_peak_bytes');
    const inflightAway = await collector.metric('mega_collector_inflight_bytes');
    console.log(`in-flight bound ${BOUND} B, aggregator away: in flight ${inflightAway} B, peak ${peakAway} B (${((peakAway / BOUND - 1) * 100).toFixed(1)}% over)`);
    expect(inflightAway).toBeGreaterThanOrEqual(BOUND);
    expect(peakAway).toBeLessThanOrEqual(BOUND + ONE_READ);
    expect(await collector.metric('mega_collector_lines_split_total')).toBe(0);

    aggregator = await startAggregator({
      env: {
        AGGREGATOR_LISTEN_ADDRESS: `127.0.0.1:${port}`,
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms',
      },
    });
    await waitFor(async () => (await collector?.metric('mega_collector_lines_acknowledged_total')) === written.length, { timeoutMs: 60_000, intervalMs: 100, what: 'every written line acknowledged' });
    await waitFor(() => readDelivered(out).length >= written.length, { timeoutMs: 20_000, intervalMs: 100, what: 'every written line delivered' });
    const report = checkDelivery(written, readDelivered(out));
    const peak = await collector.metric('mega_collector_inflight_peak_bytes');
    console.log(`catch-up: ${report.expected} written, ${report.delivered} delivered, ${report.missing.length} lost, ${report.duplicates} duplicated; peak in flight ${peak} B`);
    expect(report.missing).toHaveLength(0);
    expect(report.duplicates).toBe(0);
    expect(report.unexpected).toEqual([]);
    expect(peak).toBeLessThanOrEqual(BOUND + ONE_READ);
    expect(await collector.stop()).toBe(0);
  });
});

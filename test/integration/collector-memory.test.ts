import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { checkDelivery, readDelivered } from '../helpers/collector-delivery.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { waitFor } from '../helpers/wait-for.js';
import { killAndRemove } from '../helpers/tear-down.js';

/**
 * The collector's memory (issue #12: at most 64 MiB RSS): the program run as
 * `node dist/cmd/collector/main.js`, with no node options (so without its first line's GC options,
 * which only running it as a file applies), keeps V8's young generation at its initial size while it
 * ships tens of MiB (src/collector/young-generation.ts), and still delivers every line.
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});

const MiB = 1024 * 1024;

describe('collector memory', () => {
  it('regression: the young generation stays at most 4 MiB (V8 grew it to 16-32 MiB) while 24 MB of lines are shipped, every line delivered once', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-memory-'));
    const logs = join(dir, 'logs');
    const out = join(dir, 'out.jsonl');
    mkdirSync(logs);
    const written: string[] = [];
    for (let part = 0; part < 20; part++) {
      const lines: string[] = [];
      for (let i = 0; i < 10_000; i++) lines.push(`${String(part * 10_000 + i).padStart(9, '0')} ${'m'.repeat(110)}`);
      appendFileSync(join(logs, 'a.log'), `${lines.join('\n')}\n`);
      written.push(...lines);
    }
    aggregator = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms',
      },
    });
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_REMOTE_ADDRESS: aggregator.address,
      COLLECTOR_FILES: join(logs, '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
    });
    const c = collector;
    let youngPeak = 0;
    await waitFor(
      async () => {
        youngPeak = Math.max(youngPeak, await c.metric('nodejs_heap_space_size_total_bytes', { space: 'new' }));
        return (await c.metric('mega_collector_lines_acknowledged_total')) === written.length;
      },
      { timeoutMs: 90_000, intervalMs: 100, what: 'every written line acknowledged' },
    );
    youngPeak = Math.max(youngPeak, await c.metric('nodejs_heap_space_size_total_bytes', { space: 'new' }));
    await waitFor(() => readDelivered(out).length >= written.length, { timeoutMs: 30_000, intervalMs: 100, what: 'every written line delivered' });
    const report = checkDelivery(written, readDelivered(out));
    console.log(`young generation at most ${(youngPeak / MiB).toFixed(1)} MiB; ${report.expected} written, ${report.delivered} delivered, ${report.missing.length} lost, ${report.duplicates} duplicated`);
    expect(report.missing).toHaveLength(0);
    expect(report.duplicates).toBe(0);
    expect(report.unexpected).toEqual([]);
    expect(youngPeak).toBeGreaterThan(0);
    expect(youngPeak).toBeLessThanOrEqual(4 * MiB);
    expect(await c.stop()).toBe(0);
  });
});

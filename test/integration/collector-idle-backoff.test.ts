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
import { killAndRemove } from '../helpers/tear-down.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Idle files are polled less and less often (COLLECTOR_POLL_INTERVAL doubling up to
 * COLLECTOR_POLL_MAX_INTERVAL); what the directory watch reports is read at once. Here the polls are a
 * minute apart, so every step below (growth of an idle file, copytruncate, rename + create) can only be
 * seen through the watch's events within the test's waits: if an event did not wake the file, the
 * lines would sit in the file past the 15 s waits. (It also caught a lost wake-up: a file opened while
 * a pass of the read loop was under way waited for the next poll.)
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});

describe('collector with idle files polled a minute apart', () => {
  it('reads growth, a copytruncate and a rename + create of an idle file as the directory watch reports them; nothing lost or duplicated', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-idle-'));
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    const out = join(dir, 'out.jsonl');
    const writer = new LogWriter(logs);
    aggregator = await startAggregator({
      env: { AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }), AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms' },
    });
    for (const s of ['app', 'quiet']) writer.append(s, 20);
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_POLL_INTERVAL: '60s',
      COLLECTOR_POLL_MAX_INTERVAL: '60s',
      // The rescan would find the new file of a rename too: out of the way as well.
      COLLECTOR_RESCAN_INTERVAL: '60s',
      COLLECTOR_REMOTE_ADDRESS: aggregator.address,
      COLLECTOR_FILES: join(logs, '*.log*'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
    });
    const delivered = async (what: string): Promise<void> => {
      const want = writer.written.length;
      await waitFor(() => new Set(readDelivered(out).map((d) => d.line)).size >= want, { timeoutMs: 15_000, intervalMs: 50, what });
    };
    await delivered('the first lines');
    // Both files are idle now, their next poll a minute away.
    await new Promise((r) => setTimeout(r, 500));
    writer.append('app', 30);
    await delivered('lines appended to an idle file');
    writer.rotateCopyTruncate('app');
    writer.append('app', 30);
    await delivered('lines written after a copytruncate');
    expect(await collector.metric('mega_collector_rotations_total', { kind: 'copytruncate' })).toBe(1);
    writer.rotateRename('app');
    writer.append('app', 30);
    await delivered('lines of the new file after a rename + create');
    writer.append('quiet', 5);
    await delivered('lines appended to the other idle file');
    await new Promise((r) => setTimeout(r, 500));
    const report = checkDelivery(writer.written, readDelivered(out));
    expect(report.missing).toEqual([]);
    expect(report.duplicates).toBe(0);
    expect(report.unexpected).toEqual([]);
    expect(await collector.stop()).toBe(0);
  });
});

import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { restartablePort } from '../helpers/free-port.js';
import { tryWaitFor, waitFor } from '../helpers/wait-for.js';
import { killAndRemove } from '../helpers/tear-down.js';

/**
 * The aggregator is away while 200 MB of logs pile up: the collector stops reading at
 * COLLECTOR_MAX_INFLIGHT_BYTES, so its memory stays bounded (RSS measured), and when the aggregator
 * comes up everything is delivered.
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});

const MiB = 1024 * 1024;
const LINE_BYTES = 120;
/** Generous for Node + gRPC + a 4 MiB in-flight budget; a collector that read everything would need >200 MB. */
const RSS_BOUND = 160 * MiB;

/** Writes `totalBytes` of 120-byte lines to `path` in 1 MiB-ish appends; returns the line count. */
function writeLines(path: string, totalBytes: number, tag: string): number {
  const perBlock = 8192;
  const pad = 'x'.repeat(LINE_BYTES - tag.length - 1 - 10 - 1 - 1);
  let n = 0;
  while (n * LINE_BYTES < totalBytes) {
    const parts: string[] = [];
    for (let i = 0; i < perBlock; i++, n++) parts.push(`${tag} ${String(n).padStart(10, '0')} ${pad}\n`);
    appendFileSync(path, parts.join(''));
  }
  return n;
}

describe('collector memory while the aggregator is away', () => {
  it('keeps RSS bounded by the in-flight budget, then delivers everything', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-bp-'));
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    const port = await restartablePort();
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_REMOTE_ADDRESS: `127.0.0.1:${port}`,
      COLLECTOR_FILES: join(logs, '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
      COLLECTOR_MAX_INFLIGHT_BYTES: '4MiB',
      COLLECTOR_BUFFER_MAX_BYTES: '1MiB',
    });
    const lines = writeLines(join(logs, 'a.log'), 100 * MiB, 'a') + writeLines(join(logs, 'b.log'), 100 * MiB, 'b');
    let peakAway = 0;
    await tryWaitFor(async () => (await collector?.metric('mega_collector_reading_paused')) === 1, { timeoutMs: 10_000, intervalMs: 100, what: 'the collector to pause reading' });
    for (let i = 0; i < 20; i++) {
      peakAway = Math.max(peakAway, collector.rss());
      await new Promise((r) => setTimeout(r, 100));
    }
    const behind = await collector.metric('mega_collector_behind_bytes');
    const inflight = await collector.metric('mega_collector_inflight_bytes');
    console.log(`aggregator away: ${lines} lines on disk, collector peak RSS ${(peakAway / MiB).toFixed(1)} MiB, ${(inflight / MiB).toFixed(1)} MiB in flight, ${(behind / MiB).toFixed(1)} MiB behind`);
    expect(await collector.metric('mega_collector_reading_paused')).toBe(1);
    expect(inflight).toBeLessThan(4 * MiB + 2 * MiB);
    expect(behind).toBeGreaterThan(150 * MiB);
    expect(peakAway).toBeLessThan(RSS_BOUND);

    aggregator = await startAggregator({
      env: { AGGREGATOR_LISTEN_ADDRESS: `127.0.0.1:${port}`, AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms' },
    });
    const started = Date.now();
    let peakCatchUp = 0;
    const delivered = await tryWaitFor(async () => {
      peakCatchUp = Math.max(peakCatchUp, collector?.rss() ?? 0);
      return (await collector?.metric('mega_collector_lines_acknowledged_total')) === lines;
    }, { timeoutMs: 45_000, intervalMs: 100, what: 'every line acknowledged' });
    const seconds = (Date.now() - started) / 1000;
    console.log(`catch-up: ${lines} lines in ${seconds.toFixed(1)} s (${Math.round(lines / seconds)} lines/s), collector peak RSS ${(peakCatchUp / MiB).toFixed(1)} MiB`);
    expect(delivered).toBe(true);
    expect(await aggregator.metric('mega_aggregator_entries_acked_total')).toBe(lines);
    expect(peakCatchUp).toBeLessThan(RSS_BOUND);
    expect(await collector.metric('mega_collector_behind_bytes')).toBe(0);
    expect(await collector.stop()).toBe(0);
  });

  it('a full aggregator spool (RESOURCE_EXHAUSTED) slows the collector down; nothing is dropped or reordered', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-bp-'));
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    const out = join(dir, 'out.log');
    // A directory where the emitter's output file should be: emitting fails, the 4 MiB spool fills up.
    mkdirSync(out);
    aggregator = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_SPOOL_MAX_BYTES: '4MiB',
        AGGREGATOR_SPOOL_SEGMENT_BYTES: '1MiB',
        AGGREGATOR_MAX_CHUNK_BYTES: '2MiB',
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out }),
        AGGREGATOR_EMIT_RETRY_INITIAL_DELAY: '100ms',
        AGGREGATOR_EMIT_RETRY_MAX_DELAY: '200ms',
      },
    });
    const lines = writeLines(join(logs, 'a.log'), 10 * MiB, 'a');
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_REMOTE_ADDRESS: aggregator.address,
      COLLECTOR_FILES: join(logs, '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
      COLLECTOR_BUFFER_MAX_BYTES: '256KiB',
    });
    await waitFor(async () => ((await aggregator?.metric('mega_aggregator_chunks_refused_total', { reason: 'spool_full' })) ?? 0) > 0, { timeoutMs: 15_000, intervalMs: 100, what: 'a chunk refused for spool_full' });
    rmdirSync(out);
    await waitFor(async () => (await collector?.metric('mega_collector_lines_acknowledged_total')) === lines, { timeoutMs: 30_000, intervalMs: 100, what: 'every line acknowledged' });
    await waitFor(async () => (await aggregator?.metric('mega_aggregator_entries_emitted_total')) === lines, { timeoutMs: 15_000, intervalMs: 100, what: 'every line emitted' });
    const emitted = readFileSync(out, 'latin1').split('\n').filter((l) => l !== '');
    expect(emitted).toHaveLength(lines);
    // Raw lines carry their sequence number: in order and each once.
    const seqs = emitted.map((l) => Number(l.slice(2, 12)));
    expect(seqs.every((n, i) => n === i)).toBe(true);
    expect(await collector.metric('mega_collector_chunks_rejected_total')).toBe(0);
    expect(await collector.stop()).toBe(0);
  });
});

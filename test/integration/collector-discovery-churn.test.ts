import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { readDelivered } from '../helpers/collector-delivery.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { tryWaitFor } from '../helpers/wait-for.js';
import { killAndRemove } from '../helpers/tear-down.js';

/**
 * Files created, written and deleted at 100 per second for 4 s while another file takes 20,000
 * lines/s, with the default 10 s rescan (so only the watchers count): every file that lived at least
 * LIFETIME_BOUND_MS is delivered whole (real collector and aggregator processes, numbered lines).
 * Shorter-lived files are reported, not asserted: a file deleted before the kernel's event for it is
 * handled cannot be opened by anyone. Prints the discovery delay (creation to tailing, from the
 * collector's log, and the mega_collector_discovery_delay_seconds histogram) that README.md quotes.
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});

/**
 * The stated bound (README.md): a file that lives this long under this load is read whole. Measured:
 * 500 ms held in 3 of 3 runs on 2 cores at load average ~20, and failed (2 files) at ~46, where
 * 1000 ms held; the bound is set for a loaded machine (npm test runs two files at once).
 */
const LIFETIME_BOUND_MS = 1000;
const LIFETIMES_MS = [0, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];
const RUN_MS = 4000;

interface Churned {
  readonly path: string;
  readonly lines: string[];
  bornWallMs: number;
  bornMs: number;
  diedMs: number;
  dies: number;
  readonly plannedMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

describe('collector discovery under file churn', () => {
  it(`regression: files created and deleted at 100/s under load: every file living >= ${LIFETIME_BOUND_MS} ms is delivered whole`, async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-churn-'));
    const logs = join(dir, 'logs');
    const out = join(dir, 'out.jsonl');
    mkdirSync(logs);
    aggregator = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
      },
    });
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_RESCAN_INTERVAL: '10s',
      COLLECTOR_REMOTE_ADDRESS: aggregator.address,
      COLLECTOR_FILES: join(logs, '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
    });
    const pad = 'p'.repeat(60);
    const busy = join(logs, 'busy.log');
    let busySeq = 0;
    const files: Churned[] = [];
    const live = new Set<Churned>();
    const start = performance.now();
    let created = 0;
    let tick = 0;
    while (performance.now() - start < RUN_MS || live.size > 0) {
      const now = performance.now();
      // Load: 200 lines every 10 ms on one busy file (not checked line by line: the churned files are).
      if (now - start < RUN_MS) {
        const lines: string[] = [];
        for (let i = 0; i < 200; i++) lines.push(`busy ${String(busySeq++).padStart(9, '0')} ${pad}`);
        appendFileSync(busy, `${lines.join('\n')}\n`);
      }
      // 100 files a second, each created with its first lines, written every tick, then deleted.
      while (now - start < RUN_MS && created < ((now - start) / 1000) * 100) {
        const i = created++;
        const plannedMs = LIFETIMES_MS[i % LIFETIMES_MS.length] as number;
        const f: Churned = { path: join(logs, `c${i}.log`), lines: [], bornWallMs: 0, bornMs: 0, diedMs: 0, dies: 0, plannedMs };
        const first = [0, 1, 2].map((k) => `c${i} ${String(k).padStart(6, '0')} ${pad}`);
        appendFileSync(f.path, `${first.join('\n')}\n`);
        f.bornMs = performance.now();
        f.bornWallMs = Date.now();
        f.lines.push(...first);
        f.dies = f.bornMs + plannedMs;
        files.push(f);
        live.add(f);
      }
      for (const f of [...live]) {
        if (performance.now() >= f.dies) {
          f.diedMs = performance.now();
          unlinkSync(f.path);
          live.delete(f);
          continue;
        }
        if (tick % 2 === 0 && performance.now() > f.bornMs + 1) {
          const line = `c${files.indexOf(f)} ${String(f.lines.length).padStart(6, '0')} ${pad}`;
          appendFileSync(f.path, `${line}\n`);
          f.lines.push(line);
        }
      }
      tick++;
      const shortest = Math.min(10, ...[...live].map((f) => f.dies - performance.now()));
      await sleep(Math.max(0, shortest));
    }
    const cpu = readFileSync(`/proc/${collector.child.pid}/stat`, 'utf8').split(' ');
    console.log(`collector CPU during the run: ${((Number(cpu[13]) + Number(cpu[14])) / 100).toFixed(2)} s`);
    const totalLines = files.reduce((n, f) => n + f.lines.length, 0);
    const delivered = () => new Set(readDelivered(out).map((d) => d.line));
    // Deleted files drain for COLLECTOR_ROTATE_WAIT (1 s) after their last growth.
    await tryWaitFor(async () => (await collector?.metric('mega_collector_lines_acknowledged_total', { path: busy })) === busySeq, { timeoutMs: 30_000, intervalMs: 200, what: 'every line of the busy file acknowledged' });
    await sleep(2000);
    const got = delivered();
    const byLifetime = new Map<number, { files: number; incomplete: number; lost: number }>();
    const failures: string[] = [];
    for (const f of files) {
      const life = f.diedMs - f.bornMs;
      const planned = f.plannedMs;
      const row = byLifetime.get(planned) ?? { files: 0, incomplete: 0, lost: 0 };
      const lost = f.lines.filter((l) => !got.has(l)).length;
      row.files++;
      row.lost += lost;
      if (lost > 0) row.incomplete++;
      byLifetime.set(planned, row);
      if (lost > 0 && life >= LIFETIME_BOUND_MS) failures.push(`${f.path} lived ${life.toFixed(1)} ms, ${lost} of ${f.lines.length} lines lost`);
    }
    for (const [planned, row] of [...byLifetime].sort((a, b) => a[0] - b[0])) {
      console.log(`lifetime ${planned} ms: ${row.files} files, ${row.incomplete} incomplete, ${row.lost} lines lost`);
    }
    // Creation to tailing (log time, ms), and the histogram of creation to first open.
    const tailed = new Map<string, number>();
    for (const l of collector.logs) {
      if (!l.includes('"tailing new file"')) continue;
      const r = JSON.parse(l) as { path: string; time: number };
      if (!tailed.has(r.path)) tailed.set(r.path, r.time);
    }
    const delays = files.filter((f) => tailed.has(f.path)).map((f) => (tailed.get(f.path) as number) - f.bornWallMs);
    delays.sort((a, b) => a - b);
    const text = await collector.metricsText();
    const buckets = [...text.matchAll(/^mega_collector_discovery_delay_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)].map((m) => [Number(m[1] === '+Inf' ? Infinity : m[1]), Number(m[2])] as const);
    const count = buckets.at(-1)?.[1] ?? 0;
    const p99Bucket = buckets.find(([, n]) => n >= 0.99 * count)?.[0];
    console.log(
      `churn: ${files.length} files (${totalLines} lines) + ${busySeq} busy lines in ${RUN_MS} ms; tailed ${delays.length}; creation→tailing p50 ${percentile(delays, 50)} ms, p99 ${percentile(delays, 99)} ms, max ${delays.at(-1)} ms; creation→open histogram p99 <= ${p99Bucket} s over ${count} files`,
    );
    expect(failures).toEqual([]);
    expect(files.length).toBeGreaterThanOrEqual(380);
    expect(await collector.stop()).toBe(0);
  });
});

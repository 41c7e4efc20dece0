/**
 * What an idle collector costs beside the application: CPU (share of one core) and RSS of the real
 * collector tailing `files` quiet files (one line each, all shipped before measuring) into a live
 * aggregator, against the same with one file, `runs` times interleaved. Default settings; started
 * through the programs' first lines as the bins are.
 *
 *   node dist/bench/idle-bench.js [files=1000] [seconds=10] [runs=3]
 *
 * Each run waits until every line is emitted and `settle` more seconds (the files' polls have backed
 * off by then), then reads /proc/<pid>/stat before and after `seconds`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scrapeMetric } from '../support/metrics-text.js';
import { withBenchCollector } from './e2e-bench.js';
import { positionalArgs } from './positional-args.js';
import { cpuSeconds } from './proc-stats.js';
import { medianWithSpread } from './stats.js';

const SETTLE_MS = 5000;

interface IdleResult {
  readonly cpuPercent: number;
  readonly rssMiB: number;
}

async function measure(files: number, seconds: number): Promise<IdleResult> {
  const prepare = (dir: string): string => {
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    for (let i = 0; i < files; i++) writeFileSync(join(logs, `f${i}.log`), `idle file ${i}\n`);
    return join(logs, '*.log');
  };
  return withBenchCollector('mc-idle-bench-', prepare, async ({ aggregator, collector }) => {
    const metricsPort = Number(aggregator.ready.metricsPort);
    const deadline = Date.now() + 120_000;
    while ((await scrapeMetric(metricsPort, 'mega_aggregator_entries_emitted_total')) < files) {
      if (Date.now() > deadline) throw new Error(`not all of ${files} lines emitted in time`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const pid = collector.child.pid;
    const before = cpuSeconds(pid);
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpuPercent = ((cpuSeconds(pid) - before) / elapsed) * 100;
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpuPercent, rssMiB: m === null ? Number.NaN : Number(m[1]) / 1024 };
  });
}

async function main(): Promise<void> {
  const [files, seconds, runs] = positionalArgs('usage: node dist/bench/idle-bench.js [files=1000] [seconds=10] [runs=3]', [
    { name: 'files', fallback: 1000 },
    { name: 'seconds', fallback: 10 },
    { name: 'runs', fallback: 3 },
  ]) as [number, number, number];
  const cases = [...new Set([1, files])];
  const results = new Map<number, IdleResult[]>(cases.map((c) => [c, []]));
  for (let r = 0; r < runs; r++) {
    for (const c of cases) {
      const res = await measure(c, seconds);
      (results.get(c) as IdleResult[]).push(res);
      console.log(`run ${r + 1}: ${c} idle file(s): ${res.cpuPercent.toFixed(1)} % of a core, RSS ${res.rssMiB.toFixed(1)} MiB`);
    }
  }
  console.log(`\nidle collector, default settings, ${seconds} s measured ${SETTLE_MS / 1000} s after every line was emitted; ${runs} interleaved runs, medians (min–max)`);
  console.log('| idle files | CPU, % of a core | RSS MiB |');
  console.log('| --- | --- | --- |');
  for (const c of cases) {
    const rs = results.get(c) as IdleResult[];
    console.log(`| ${c} | ${medianWithSpread(rs.map((x) => x.cpuPercent), 1)} | ${medianWithSpread(rs.map((x) => x.rssMiB), 1)} |`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

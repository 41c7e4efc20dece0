/**
 * The measurements of issue #12 beyond the rsyslog comparison, each case run `runs` times INTERLEAVED
 * (round 1: every case, round 2: every case, ...) so that whatever else the machine does colours all
 * cases alike; printed as medians with the spread (min–max) over the runs. Every run is verified line
 * for line (a lost, duplicated or changed line fails the run and the suite exits 1: a failure, not a
 * number). Cases, selected by name:
 *   ingest   the aggregator alone, fed pre-encoded chunks over real gRPC by 1, 10 and 50 streams
 *   files    collector → aggregator → file, 1,000 files of 1,000 lines
 *   long     collector → aggregator → file, 100,000 lines of 8 KiB
 *   memory   collector → aggregator → file at --memory-sizes lines: peak RSS as the input grows
 *   latency  p50/p99 at half load (half the lines/s of a calibration run of --lines lines, or --latency-rate)
 *
 * The ingest case sends --ingest-lines (default 3,000,000): a million lines take the aggregator under two
 * seconds, where the first chunks (JIT warm-up) and the emit side's tail weigh as much as the stream
 * count; three million measure the capacity the issue asks about with a third of that noise.
 *
 *   node dist/bench/suite.js [ingest] [files] [long] [memory] [latency] [--runs 3] [--lines 1000000]
 *     [--ingest-lines 3000000]
 *     [--memory-sizes 1000000,10000000] [--files 1000] [--file-lines 1000] [--long-lines 100000]
 *     [--long-bytes 8192] [--latency-rate N] [--latency-seconds 5] [--streams 1,10,50]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeCorpus, writeCorpusFiles } from './corpus.js';
import { BENCH_PUBLISH_FREQUENCY_MS, runE2eOnInput } from './e2e-bench.js';
import type { E2eResult } from './e2e-bench.js';
import { runIngestBench } from './ingest-bench.js';
import { runLatencyBench } from './latency-bench.js';
import { median, medianWithSpread } from './stats.js';

const USAGE =
  'usage: node dist/bench/suite.js [ingest] [files] [long] [memory] [latency] [--runs 3] [--lines 1000000] [--ingest-lines 3000000]\n' +
  '  [--line-bytes 120] [--memory-sizes 1000000,10000000] [--files 1000] [--file-lines 1000] [--long-lines 100000]\n' +
  '  [--long-bytes 8192] [--latency-rate N] [--latency-seconds 5] [--streams 1,10,50]   (see bench/README.md)';

const OPTIONS = {
  runs: { type: 'string', default: '3' },
  lines: { type: 'string', default: '1000000' },
  'ingest-lines': { type: 'string', default: '3000000' },
  'line-bytes': { type: 'string', default: '120' },
  streams: { type: 'string', default: '1,10,50' },
  'memory-sizes': { type: 'string', default: '1000000' },
  files: { type: 'string', default: '1000' },
  'file-lines': { type: 'string', default: '1000' },
  'long-lines': { type: 'string', default: '100000' },
  'long-bytes': { type: 'string', default: '8192' },
  'latency-rate': { type: 'string' },
  'latency-seconds': { type: 'string', default: '5' },
  help: { type: 'boolean', default: false },
} as const;

function parseOptions(): ReturnType<typeof parseArgs<{ allowPositionals: true; options: typeof OPTIONS }>> {
  try {
    return parseArgs({ allowPositionals: true, options: OPTIONS });
  } catch (err) {
    // An unknown or malformed option: one line and the usage, not a stack trace.
    console.error(`suite: ${err instanceof Error ? err.message.split('\n', 1)[0] : String(err)}\n${USAGE}`);
    process.exit(2);
  }
}

const { values, positionals } = parseOptions();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const ALL = ['ingest', 'files', 'long', 'memory', 'latency'] as const;
type Group = (typeof ALL)[number];
const selected: Group[] = positionals.length === 0 ? [...ALL] : (positionals as Group[]);
for (const name of selected) {
  if (!(ALL as readonly string[]).includes(name)) {
    console.error(`unknown case "${name}" (one of ${ALL.join(', ')})`);
    process.exit(2);
  }
}
const runs = Number(values.runs);
const lines = Number(values.lines);
const lineBytes = Number(values['line-bytes']);

type Metrics = Record<string, number>;

interface Column {
  readonly key: string;
  readonly header: string;
  readonly digits: number;
}

interface Case {
  readonly group: Group;
  readonly label: string;
  run(runDir: string): Promise<Metrics>;
}

const E2E_COLUMNS: readonly Column[] = [
  { key: 'seconds', header: 'time s', digits: 2 },
  { key: 'linesPerSecond', header: 'lines/s', digits: 0 },
  { key: 'mibPerSecond', header: 'MiB/s', digits: 1 },
  { key: 'collectorCpuPerM', header: 'CPU s per 1M lines, collector', digits: 2 },
  { key: 'aggregatorCpuPerM', header: 'CPU s per 1M lines, aggregator', digits: 2 },
  { key: 'collectorRss', header: 'peak RSS collector MiB', digits: 0 },
  { key: 'aggregatorRss', header: 'peak RSS aggregator MiB', digits: 0 },
];

const COLUMNS: Record<Group, readonly Column[]> = {
  ingest: [
    { key: 'linesPerSecond', header: 'lines/s (all emitted)', digits: 0 },
    { key: 'ackedLinesPerSecond', header: 'lines/s (all acked, durable)', digits: 0 },
    { key: 'cpuPerM', header: 'aggregator CPU s per 1M lines', digits: 2 },
    { key: 'rss', header: 'aggregator peak RSS MiB', digits: 0 },
    { key: 'generatorCpu', header: 'load generator CPU s', digits: 2 },
  ],
  files: E2E_COLUMNS,
  long: E2E_COLUMNS,
  memory: E2E_COLUMNS,
  latency: [
    { key: 'rate', header: 'lines/s written', digits: 0 },
    { key: 'p50', header: 'p50 ms', digits: 0 },
    { key: 'p90', header: 'p90 ms', digits: 0 },
    { key: 'p99', header: 'p99 ms', digits: 0 },
    { key: 'max', header: 'max ms', digits: 0 },
  ],
};

function e2eMetrics(r: E2eResult): Metrics {
  const perM = 1_000_000 / r.lines;
  return {
    seconds: r.seconds,
    linesPerSecond: r.linesPerSecond,
    mibPerSecond: r.mibPerSecond,
    collectorCpuPerM: r.collectorCpuSeconds * perM,
    aggregatorCpuPerM: r.aggregatorCpuSeconds * perM,
    collectorRss: r.collectorPeakRssMiB,
    aggregatorRss: r.aggregatorPeakRssMiB,
  };
}

const root = mkdtempSync(join(tmpdir(), 'mc-suite-'));

/** Writes each corpus once; every run of a case reads the same file(s). */
function corpus(name: string, write: (path: string) => void): string {
  const path = join(root, name);
  write(path);
  return path;
}

async function main(): Promise<boolean> {
  const cases: Case[] = [];
  if (selected.includes('ingest')) {
    const ingestLines = Number(values['ingest-lines']);
    for (const streams of values.streams.split(',').map(Number)) {
      cases.push({
        group: 'ingest',
        label: `${streams} stream${streams === 1 ? '' : 's'}, ${ingestLines.toLocaleString('en-US')} lines of ${lineBytes} B`,
        run: async () => {
          const r = await runIngestBench(streams, ingestLines, lineBytes);
          return {
            linesPerSecond: r.linesPerSecond,
            ackedLinesPerSecond: r.lines / r.ackSeconds,
            cpuPerM: r.aggregatorCpuPerMillion,
            rss: r.aggregatorPeakRssMiB,
            generatorCpu: r.generatorCpuSeconds,
          };
        },
      });
    }
  }
  if (selected.includes('files')) {
    const files = Number(values.files);
    const perFile = Number(values['file-lines']);
    const dir = corpus('files', (path) => {
      mkdirSync(path);
      writeCorpusFiles(path, files, perFile, lineBytes);
    });
    cases.push({
      group: 'files',
      label: `${files.toLocaleString('en-US')} files of ${perFile.toLocaleString('en-US')} lines of ${lineBytes} B`,
      run: async (runDir) => e2eMetrics(await runE2eOnInput(runDir, join(dir, '*.log'), files * perFile, lineBytes, 'file')),
    });
  }
  if (selected.includes('long')) {
    const n = Number(values['long-lines']);
    const bytes = Number(values['long-bytes']);
    const input = corpus('long.log', (path) => writeCorpus(path, n, bytes));
    cases.push({
      group: 'long',
      label: `${n.toLocaleString('en-US')} lines of ${bytes.toLocaleString('en-US')} B`,
      run: async (runDir) => e2eMetrics(await runE2eOnInput(runDir, input, n, bytes, 'file')),
    });
  }
  if (selected.includes('memory')) {
    for (const size of values['memory-sizes'].split(',').map(Number)) {
      const input = corpus(`memory-${size}.log`, (path) => writeCorpus(path, size, lineBytes));
      cases.push({
        group: 'memory',
        label: `${size.toLocaleString('en-US')} lines of ${lineBytes} B`,
        run: async (runDir) => e2eMetrics(await runE2eOnInput(runDir, input, size, lineBytes, 'file')),
      });
    }
  }
  if (selected.includes('latency')) {
    let rate = values['latency-rate'] === undefined ? 0 : Number(values['latency-rate']);
    if (rate === 0) {
      const input = corpus('calibration.log', (path) => writeCorpus(path, lines, lineBytes));
      const runDir = join(root, 'calibration');
      mkdirSync(runDir);
      const full = await runE2eOnInput(runDir, input, lines, lineBytes, 'file');
      rmSync(runDir, { recursive: true, force: true });
      rate = Math.floor(full.linesPerSecond / 2 / 1000) * 1000;
      console.log(`full load (calibration, ${lines.toLocaleString('en-US')} lines, verified): ${Math.round(full.linesPerSecond).toLocaleString('en-US')} lines/s; half load: ${rate.toLocaleString('en-US')} lines/s`);
    }
    const seconds = Number(values['latency-seconds']);
    cases.push({
      group: 'latency',
      label: `${rate.toLocaleString('en-US')} lines/s for ${seconds} s`,
      run: async () => {
        const r = await runLatencyBench(rate, seconds);
        return { rate: r.rate, p50: r.p50, p90: r.p90, p99: r.p99, max: r.max };
      },
    });
  }

  const results = new Map<Case, Metrics[]>(cases.map((c) => [c, []]));
  const failures: string[] = [];
  for (let round = 1; round <= runs; round++) {
    for (const c of cases) {
      const runDir = join(root, `run-${round}`);
      mkdirSync(runDir, { recursive: true });
      try {
        const m = await c.run(runDir);
        results.get(c)?.push(m);
        console.log(`round ${round} ${c.group} ${c.label}: ${COLUMNS[c.group].map((col) => `${col.header} ${(m[col.key] as number).toFixed(col.digits)}`).join(', ')}; verified`);
      } catch (err) {
        const message = `round ${round} ${c.group} ${c.label}: FAILED: ${err instanceof Error ? err.message : String(err)}`;
        failures.push(message);
        console.log(message);
      } finally {
        rmSync(runDir, { recursive: true, force: true });
      }
    }
  }

  console.log(`\n${runs} interleaved runs per case, medians (min–max); every run verified line for line.`);
  for (const group of ALL) {
    const inGroup = cases.filter((c) => c.group === group);
    if (inGroup.length === 0) continue;
    const columns = COLUMNS[group];
    console.log(`\n### ${group}\n`);
    console.log(`| case | ${columns.map((c) => c.header).join(' | ')} |`);
    console.log(`| --- | ${columns.map(() => '---').join(' | ')} |`);
    for (const c of inGroup) {
      const ms = results.get(c) ?? [];
      if (ms.length === 0) {
        console.log(`| ${c.label} | ${columns.map(() => 'failed').join(' | ')} |`);
        continue;
      }
      console.log(`| ${c.label} | ${columns.map((col) => medianWithSpread(ms.map((m) => m[col.key] as number), col.digits)).join(' | ')} |`);
    }
    verdicts(group, inGroup, results);
  }
  if (failures.length > 0) console.log(`\n${failures.length} run(s) FAILED:\n${failures.join('\n')}`);
  return failures.length === 0;
}

/** What the issue's targets say about a group's medians. */
function verdicts(group: Group, inGroup: readonly Case[], results: ReadonlyMap<Case, Metrics[]>): void {
  const med = (c: Case | undefined, key: string): number => median((results.get(c as Case) ?? []).map((m) => m[key] as number));
  const first = inGroup[0];
  const last = inGroup[inGroup.length - 1];
  if (first === undefined || last === undefined || (results.get(first) ?? []).length === 0 || (results.get(last) ?? []).length === 0) return;
  if (group === 'ingest' && inGroup.length > 1) {
    console.log(
      `\nmost streams / one stream: lines/s ${(med(last, 'linesPerSecond') / med(first, 'linesPerSecond')).toFixed(2)}x (target ≥ 1), ` +
        `CPU per line ${(med(last, 'cpuPerM') / med(first, 'cpuPerM')).toFixed(2)}x (target ≤ 1)`,
    );
  }
  if (group === 'memory' && inGroup.length > 1) {
    console.log(
      `\nlargest / smallest input: peak RSS collector ${(med(last, 'collectorRss') / med(first, 'collectorRss')).toFixed(2)}x, ` +
        `aggregator ${(med(last, 'aggregatorRss') / med(first, 'aggregatorRss')).toFixed(2)}x (flat: ≤ 1; targets: collector ≤ 64 MiB, aggregator ≤ 128 MiB)`,
    );
  }
  if (group === 'latency') {
    const bound = BENCH_PUBLISH_FREQUENCY_MS + 250;
    const p99 = med(first, 'p99');
    console.log(`\np99 ${p99.toFixed(0)} ms against the bound ${bound} ms (publish frequency ${BENCH_PUBLISH_FREQUENCY_MS} ms + 250 ms): ${p99 <= bound ? 'within' : 'OVER'}`);
  }
}

main()
  .then((ok) => {
    rmSync(root, { recursive: true, force: true });
    process.exit(ok ? 0 : 1);
  })
  .catch((err: unknown) => {
    rmSync(root, { recursive: true, force: true });
    console.error(err);
    process.exit(1);
  });

/**
 * End-to-end throughput: file → collector → gRPC → aggregator (durable spool, fsync'd acks) → batcher
 * → emitter, with the real programs as child processes, as DESIGN.md's performance budget measures
 * rsyslog (file → TCP → file). Prints lines/s, MiB/s and peak RSS of both programs.
 *
 *   node dist/bench/e2e-bench.js [lines=1000000] [lineBytes=120] [emitter=file|blackhole]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shebangLaunch } from '../support/first-line.js';
import { scrapeMetric } from '../support/metrics-text.js';
import { startProgram } from '../support/program.js';
import type { RunningProgram } from '../support/program.js';
import { isExact, verifyOutput, writeCorpus } from './corpus.js';
import type { LineCount } from './corpus.js';
import { formatPeaks, sampleMemory } from './memory-sampler.js';
import type { MemoryPeaks, MemorySampler } from './memory-sampler.js';
import { cpuSeconds, peakRssMiB } from './proc-stats.js';
import { waitForSize } from './wait-for-size.js';
import { positionalArgs } from './positional-args.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface E2eResult {
  readonly emitter: string;
  readonly lines: number;
  readonly lineBytes: number;
  readonly seconds: number;
  readonly linesPerSecond: number;
  readonly mibPerSecond: number;
  readonly collectorPeakRssMiB: number;
  readonly aggregatorPeakRssMiB: number;
  /** Each process's whole CPU (user + system) at the end, start-up included. */
  readonly collectorCpuSeconds: number;
  readonly aggregatorCpuSeconds: number;
  /**
   * CPU at the end minus CPU when the process logged that it was ready ("started", "listening"): the
   * cost of the lines without the one-off start-up. Read as the ready line arrives; the collector may
   * already have read for a few ms by then (it starts tailing just before it logs "started").
   */
  readonly collectorCpuAfterReadySeconds: number;
  readonly aggregatorCpuAfterReadySeconds: number;
  /** The file emitter's output checked line for line (undefined for the blackhole). */
  readonly count?: LineCount;
  /** Heap against Buffers, sampled from /metrics when BENCH_MEMORY_BREAKDOWN=1. */
  readonly memory?: { readonly collector: MemoryPeaks; readonly aggregator: MemoryPeaks };
}

// BENCH_PROFILE_DIR=/tmp/prof: CPU profiles of both programs, for chrome://inspect, speedscope or
// `node dist/bench/profile-summary.js`. BENCH_COLLECTOR_NODE_ARGS / BENCH_AGGREGATOR_NODE_ARGS: extra
// node options for one program (space-separated, e.g. "--max-semi-space-size=1"), for memory experiments.
function nodeArgs(program: 'collector' | 'aggregator', script: string): string[] {
  const profile = process.env.BENCH_PROFILE_DIR;
  const extra = process.env[program === 'collector' ? 'BENCH_COLLECTOR_NODE_ARGS' : 'BENCH_AGGREGATOR_NODE_ARGS'];
  return [
    ...shebangNodeArgs(script),
    ...(profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`, `--cpu-prof-name=${program}-${process.pid}-${Date.now()}.cpuprofile`]),
    ...(extra === undefined || extra.trim() === '' ? [] : extra.trim().split(/\s+/)),
  ];
}

/** The node options of the program's first line (see shebangLaunch). */
export function shebangNodeArgs(script: string): string[] {
  return shebangLaunch(script).nodeArgs;
}

/** AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY of the benchmarks (the 15 s default would measure the batch timer). */
export const BENCH_PUBLISH_FREQUENCY_MS = 100;

/** The real aggregator on loopback ports, spooling under `dir`, with the given emitter variables. */
export function startBenchAggregator(dir: string, emitterEnv: Record<string, string>): Promise<RunningProgram> {
  const script = join(here, '../cmd/aggregator/main.js');
  return startProgram({
    script,
    env: {
      ...process.env,
      ...shebangLaunch(script).env,
      LOG_LEVEL: 'info',
      AGGREGATOR_LISTEN_ADDRESS: '127.0.0.1:0',
      AGGREGATOR_METRICS_ADDRESS: '127.0.0.1:0',
      AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
      AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: `${BENCH_PUBLISH_FREQUENCY_MS}ms`,
      ...emitterEnv,
    },
    readyMessage: 'listening',
    nodeArgs: nodeArgs('aggregator', script),
  });
}

/** The real collector, with default settings, tailing `files` into the aggregator at `grpcPort`. */
export function startBenchCollector(dir: string, files: string, grpcPort: number): Promise<RunningProgram> {
  const script = join(here, '../cmd/collector/main.js');
  return startProgram({
    script,
    env: {
      ...process.env,
      ...shebangLaunch(script).env,
      LOG_LEVEL: 'info',
      COLLECTOR_REMOTE_ADDRESS: `127.0.0.1:${grpcPort}`,
      COLLECTOR_FILES: files,
      COLLECTOR_STATE_DIR: join(dir, 'collector'),
      COLLECTOR_METRICS_ADDRESS: '127.0.0.1:0',
    },
    readyMessage: 'started',
    nodeArgs: nodeArgs('collector', script),
  });
}

/**
 * Runs `fn` beside the real aggregator (blackhole) and collector (default settings, started through
 * its first line), the collector tailing the files `prepare` writes under a fresh temporary directory
 * (it returns the COLLECTOR_FILES value); then stops both and removes the directory.
 */
export async function withBenchCollector<T>(
  prefix: string,
  prepare: (dir: string) => string,
  fn: (programs: { readonly aggregator: RunningProgram; readonly collector: RunningProgram }) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    const files = prepare(dir);
    const aggregator = await startBenchAggregator(dir, {});
    try {
      const collector = await startBenchCollector(dir, files, Number(aggregator.ready.grpcPort));
      try {
        return await fn({ aggregator, collector });
      } finally {
        await collector.stop();
      }
    } finally {
      await aggregator.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runE2eBench(lines = 1_000_000, lineBytes = 120, emitter: 'file' | 'blackhole' = 'file'): Promise<E2eResult> {
  const dir = mkdtempSync(join(tmpdir(), 'mc-e2e-'));
  try {
    const input = join(dir, 'input.log');
    writeCorpus(input, lines, lineBytes);
    return await runE2eOnInput(dir, input, lines, lineBytes, emitter);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One end-to-end run over an existing corpus file; its working files go under `dir`. */
export async function runE2eOnInput(
  dir: string,
  input: string,
  lines: number,
  lineBytes: number,
  emitter: 'file' | 'blackhole' = 'file',
): Promise<E2eResult> {
  const output = join(dir, 'shipped.log');
  const aggregator = await startBenchAggregator(dir, emitter === 'file' ? { AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: output }) } : {});
  const aggregatorReadyCpu = cpuSeconds(aggregator.child.pid);
  const metricsPort = Number(aggregator.ready.metricsPort);
  const started = process.hrtime.bigint();
  const collector = await startBenchCollector(dir, input, Number(aggregator.ready.grpcPort));
  const collectorReadyCpu = cpuSeconds(collector.child.pid);
  let samplers: { collector: MemorySampler; aggregator: MemorySampler } | undefined;
  if (process.env.BENCH_MEMORY_BREAKDOWN === '1') {
    samplers = { collector: sampleMemory(Number(collector.ready.metricsPort)), aggregator: sampleMemory(metricsPort) };
  }
  // Completion is polled cheaply: the output's size for the file emitter (a stat), the emitted
  // counter for the blackhole at a slower pace (each scrape makes the aggregator gather metrics).
  if (emitter === 'file') await waitForSize(output, lines * lineBytes, 600_000);
  else {
    const deadline = Date.now() + 600_000;
    while ((await scrapeMetric(metricsPort, 'mega_aggregator_entries_emitted_total')) < lines) {
      if (Date.now() > deadline) throw new Error(`not all of ${lines} lines emitted in time`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const collectorPeakRssMiB = peakRssMiB(collector.child.pid);
  const aggregatorPeakRssMiB = peakRssMiB(aggregator.child.pid);
  const collectorCpuSeconds = cpuSeconds(collector.child.pid);
  const aggregatorCpuSeconds = cpuSeconds(aggregator.child.pid);
  const memory = samplers === undefined ? undefined : { collector: await samplers.collector.stop(), aggregator: await samplers.aggregator.stop() };
  await collector.stop();
  await aggregator.stop();
  let count: LineCount | undefined;
  if (emitter === 'file') {
    count = verifyOutput(output, lines, lineBytes);
    if (!isExact(count)) throw new Error(`output is not the corpus: ${JSON.stringify(count)}`);
  }
  return {
    emitter,
    lines,
    lineBytes,
    seconds,
    linesPerSecond: lines / seconds,
    mibPerSecond: (lines * lineBytes) / seconds / 2 ** 20,
    collectorPeakRssMiB,
    aggregatorPeakRssMiB,
    collectorCpuSeconds,
    aggregatorCpuSeconds,
    collectorCpuAfterReadySeconds: collectorCpuSeconds - collectorReadyCpu,
    aggregatorCpuAfterReadySeconds: aggregatorCpuSeconds - aggregatorReadyCpu,
    ...(count === undefined ? {} : { count }),
    ...(memory === undefined ? {} : { memory }),
  };
}

export function formatE2e(r: E2eResult): string {
  return (
    `e2e file→collector→gRPC→aggregator(spool,fsync)→${r.emitter}: ${r.lines} lines of ${r.lineBytes} B in ${r.seconds.toFixed(2)} s = ` +
    `${Math.round(r.linesPerSecond).toLocaleString('en-US')} lines/s, ${r.mibPerSecond.toFixed(1)} MiB/s; ` +
    `CPU collector ${r.collectorCpuSeconds.toFixed(2)} s, aggregator ${r.aggregatorCpuSeconds.toFixed(2)} s ` +
    `(after ready: collector ${r.collectorCpuAfterReadySeconds.toFixed(2)} s, aggregator ${r.aggregatorCpuAfterReadySeconds.toFixed(2)} s); ` +
    `peak RSS collector ${r.collectorPeakRssMiB.toFixed(0)} MiB, aggregator ${r.aggregatorPeakRssMiB.toFixed(0)} MiB`
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [lines, lineBytes, emitter] = positionalArgs('usage: node dist/bench/e2e-bench.js [lines=1000000] [lineBytes=120] [emitter=file|blackhole]', [
    { name: 'lines', fallback: 1_000_000 },
    { name: 'lineBytes', fallback: 120, min: 23 },
    { name: 'emitter', fallback: 'file', choices: ['file', 'blackhole'] },
  ]);
  runE2eBench(lines as number, lineBytes as number, emitter as 'file' | 'blackhole')
    .then((r) => {
      console.log(formatE2e(r));
      if (r.memory !== undefined) console.log(`${formatPeaks('collector', r.memory.collector)}\n${formatPeaks('aggregator', r.memory.aggregator)}`);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}

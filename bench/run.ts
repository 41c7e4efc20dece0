/**
 * `npm run bench [-- name ...]`: the benchmarks, one after the other (two cores: running them side by
 * side would measure contention), each as its own process so one's heap does not colour the next.
 * With no names, all of them. BENCH_LINES sets the end-to-end size (default 1,000,000 lines of 120 B);
 * BENCH_RUNS the interleaved runs of the comparison and the suite (default 3); BENCH_MEMORY_SIZES the
 * memory case's sizes (default 1000000; "1000000,10000000" for the flat-memory check, ~4 more minutes).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const lines = process.env.BENCH_LINES ?? '1000000';
const runsPerCase = process.env.BENCH_RUNS ?? '3';
const memorySizes = process.env.BENCH_MEMORY_SIZES ?? '1000000';
const suite = (name: string): string[] => [join(here, 'suite.js'), name, '--runs', runsPerCase, '--lines', lines, '--memory-sizes', memorySizes];

const runs: Array<{ name: string; title: string; args: string[] }> = [
  { name: 'collector', title: 'collector: line cutting + chunk encoding', args: [join(here, 'collector-bench.js')] },
  { name: 'spool', title: 'spool: group-committed appends', args: [join(here, 'spool-bench.js')] },
  { name: 'aeron', title: 'aeron: publication → receiver on loopback', args: [join(here, 'aeron-bench.js')] },
  { name: 'e2e', title: 'end to end, file emitter', args: [join(here, 'e2e-bench.js'), lines, '120', 'file'] },
  { name: 'blackhole', title: 'end to end, blackhole emitter', args: [join(here, 'e2e-bench.js'), lines, '120', 'blackhole'] },
  { name: 'latency', title: 'end to end latency at 20,000 lines/s', args: [join(here, 'latency-bench.js'), '20000', '5'] },
  { name: 'compare', title: 'mega-collector against a tuned rsyslog, interleaved, medians of three', args: [join(here, 'compare.js'), lines, '120', runsPerCase] },
  { name: 'ingest', title: 'aggregator ingest capacity: 1, 10, 50 streams of pre-encoded chunks', args: suite('ingest') },
  { name: 'files', title: '1,000 files of 1,000 lines', args: suite('files') },
  { name: 'long', title: '100,000 lines of 8 KiB', args: suite('long') },
  { name: 'memory', title: `peak RSS as the input grows (${memorySizes} lines)`, args: suite('memory') },
  { name: 'memory-floor', title: "the collector's memory floor: node, its HTTP/2, grpc-js, the libraries, the idle collector", args: [join(here, 'memory-floor.js'), '--runs', runsPerCase] },
  { name: 'half-load-latency', title: 'p50/p99 latency at half load', args: suite('latency') },
  { name: 'idle', title: 'an idle collector: CPU and RSS with 1 and 1,000 quiet files', args: [join(here, 'idle-bench.js'), '1000', '10', runsPerCase] },
];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !runs.some((r) => r.name === w));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${runs.map((r) => r.name).join(', ')}`);
  process.exit(2);
}

let failed = 0;
for (const run of runs) {
  if (wanted.length > 0 && !wanted.includes(run.name)) continue;
  const script = run.args[0] as string;
  if (!existsSync(script)) {
    console.log(`\n## ${run.title}\n(skipped: ${script} not found)`);
    continue;
  }
  console.log(`\n## ${run.title}`);
  const result = spawnSync(process.execPath, run.args, { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);

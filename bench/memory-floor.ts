/**
 * The collector's memory floor (issue #12 asks for a 64 MiB peak): what a Node process holds before
 * the collector reads one line, built up step by step, each step a child process started as the
 * collector's own first line starts it (its variables and node options, `shebangLaunch`), measured
 * from /proc/<pid>/status once it has settled:
 *
 *   node          an empty program
 *   + http2       node's HTTP/2, TLS, zlib and DNS modules (what any gRPC client over node:http2 loads)
 *   + grpc-js     @grpc/grpc-js required
 *   + libraries   grpc-js, zod, pino, prom-client with its default metrics and chokidar
 *   collector     the collector itself, tailing an empty file into a live aggregator (blackhole)
 *
 * Each step is run `--runs` times interleaved; medians (min–max) of VmRSS, its file-backed part
 * (RssFile: the pages of the node binary the process touched) and its anonymous part (RssAnon: the V8
 * heap, Buffers, malloc). The library steps require from the repository's node_modules, unbundled; the
 * collector is the bundled program.
 *
 *   node dist/bench/memory-floor.js [--runs 3] [--settle-ms 3000]
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { shebangLaunch } from '../support/first-line.js';
import { withBenchCollector } from './e2e-bench.js';
import { medianWithSpread } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
// dist/bench when built, bench/ when a test imports the source: the repository is where package.json is.
const repo = existsSync(join(here, '..', 'package.json')) ? join(here, '..') : join(here, '..', '..');
const collectorScript = join(repo, 'dist', 'cmd', 'collector', 'main.js');

export interface Resident {
  readonly rssMiB: number;
  readonly fileMiB: number;
  readonly anonMiB: number;
}

/** VmRSS, RssFile and RssAnon of a /proc/<pid>/status text, in MiB. */
export function parseResident(status: string): Resident {
  const kib = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`/proc status has no ${key}`);
    return Number(m[1]) / 1024;
  };
  return { rssMiB: kib('VmRSS'), fileMiB: kib('RssFile'), anonMiB: kib('RssAnon') };
}

/** A CommonJS program that loads `modules` (from the repository), waits `settleMs` and prints its status. */
function libraryProgram(modules: readonly string[], settleMs: number): string {
  const loads = modules
    .map((m) => (m === 'prom-client' ? `require('prom-client').collectDefaultMetrics();` : `require(${JSON.stringify(m)});`))
    .join(' ');
  return `${loads} setTimeout(() => process.stdout.write(require('node:fs').readFileSync('/proc/self/status', 'utf8')), ${settleMs});`;
}

const STEPS: ReadonlyArray<{ name: string; modules: readonly string[] }> = [
  { name: 'node (empty program)', modules: [] },
  { name: '+ node:http2, tls, zlib, dns', modules: ['node:http2', 'node:tls', 'node:zlib', 'node:dns'] },
  { name: '+ @grpc/grpc-js', modules: ['@grpc/grpc-js'] },
  { name: '+ zod, pino, prom-client (default metrics), chokidar', modules: ['@grpc/grpc-js', 'zod', 'pino', 'prom-client', 'chokidar'] },
];

export async function measureLibraries(modules: readonly string[], settleMs: number): Promise<Resident> {
  const launch = shebangLaunch(collectorScript);
  const child = spawn(process.execPath, [...launch.nodeArgs, '-e', libraryProgram(modules, settleMs)], {
    cwd: repo,
    env: { ...process.env, ...launch.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const out: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`library step ${modules.join(', ') || '(none)'} exited ${code}`);
  return parseResident(Buffer.concat(out).toString('utf8'));
}

async function measureCollector(settleMs: number): Promise<Resident> {
  const prepare = (dir: string): string => {
    const input = join(dir, 'input.log');
    writeFileSync(input, '');
    return input;
  };
  return withBenchCollector('mc-floor-', prepare, async ({ collector }) => {
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    return parseResident(readFileSync(`/proc/${collector.child.pid}/status`, 'utf8'));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'settle-ms': { type: 'string', default: '3000' } } });
  const runs = Number(values.runs);
  const settleMs = Number(values['settle-ms']);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(settleMs) || settleMs < 0) {
    console.error('usage: node dist/bench/memory-floor.js [--runs N ≥ 1] [--settle-ms MS]');
    process.exit(2);
  }
  const names = [...STEPS.map((s) => s.name), 'collector, idle (empty file, live aggregator)'];
  const results: Resident[][] = names.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (const [i, step] of STEPS.entries()) (results[i] as Resident[]).push(await measureLibraries(step.modules, settleMs));
    (results[STEPS.length] as Resident[]).push(await measureCollector(settleMs));
  }
  const launch = shebangLaunch(collectorScript);
  console.log(`started as the collector's first line starts it: ${[...Object.entries(launch.env).map(([k, v]) => `${k}=${v}`), 'node', ...launch.nodeArgs].join(' ')}`);
  console.log(`${runs} interleaved runs, ${settleMs} ms after start (after "started" for the collector); medians (min–max), MiB`);
  console.log('| step | RSS | file-backed | anonymous |');
  console.log('| --- | --- | --- | --- |');
  for (const [i, name] of names.entries()) {
    const rs = results[i] as Resident[];
    console.log(
      `| ${name} | ${medianWithSpread(rs.map((x) => x.rssMiB), 1)} | ${medianWithSpread(rs.map((x) => x.fileMiB), 1)} | ${medianWithSpread(rs.map((x) => x.anonMiB), 1)} |`,
    );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

/**
 * Two builds of the end-to-end case, alternately, on one corpus:
 *   node dist/bench/ab-bench.js <other checkout> [pairs=3] [lines=1000000]
 * `<other checkout>` is another clone or worktree of this repository, built (`npm run build`) and able to
 * resolve its dependencies (its own node_modules, or a link to these). Each run is what
 * `e2e-bench.js` runs (file emitter, the programs as their first lines start them), imported from each
 * tree in turn, so the pair shares the machine's hour; the output is checked line for line. How the
 * before/after tables of bench/README.md were taken.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeCorpus } from './corpus.js';
import { formatE2e, runE2eOnInput } from './e2e-bench.js';
import type { E2eResult } from './e2e-bench.js';
import { parsePositional } from './positional-args.js';
import { median } from './stats.js';

const USAGE = 'usage: node dist/bench/ab-bench.js <other checkout, built> [pairs=3] [lines=1000000]';
const LINE_BYTES = 120;

type RunOnInput = (dir: string, input: string, lines: number, lineBytes: number, emitter: 'file') => Promise<E2eResult>;

/** The other tree's runE2eOnInput (this tree's is imported as usual). */
async function loadRun(root: string): Promise<RunOnInput> {
  const mod = (await import(pathToFileURL(join(root, 'dist', 'bench', 'e2e-bench.js')).href)) as { runE2eOnInput: RunOnInput };
  return mod.runE2eOnInput;
}

async function main(other: string, pairs: number, lines: number): Promise<void> {
  const here = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const builds = [
    { name: 'this', run: runE2eOnInput as RunOnInput },
    { name: 'other', run: await loadRun(other) },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'mc-ab-'));
  try {
    const input = join(dir, 'input.log');
    writeCorpus(input, lines, LINE_BYTES);
    const results = new Map<string, E2eResult[]>(builds.map((b) => [b.name, []]));
    for (let p = 1; p <= pairs; p++) {
      // Alternate which goes first, so neither always runs on the other's leftovers.
      const order = p % 2 === 1 ? builds : [...builds].reverse();
      for (const b of order) {
        const runDir = mkdtempSync(join(dir, `${b.name}-`));
        const r = await b.run(runDir, input, lines, LINE_BYTES, 'file');
        rmSync(runDir, { recursive: true, force: true });
        (results.get(b.name) as E2eResult[]).push(r);
        console.log(`pair ${p} ${b.name}: ${formatE2e(r)}`);
      }
    }
    console.log(`\n${lines} lines of ${LINE_BYTES} B, ${pairs} pairs, medians; this = ${here}, other = ${other}`);
    for (const b of builds) {
      const rs = results.get(b.name) as E2eResult[];
      const m = (f: (r: E2eResult) => number): string => median(rs.map(f)).toFixed(2);
      console.log(`  ${b.name.padEnd(5)} ${m((r) => r.seconds)} s, CPU collector ${m((r) => r.collectorCpuSeconds)} s, aggregator ${m((r) => r.aggregatorCpuSeconds)} s`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const other = argv[0];
  const rest = parsePositional(argv.slice(1), USAGE, [
    { name: 'pairs', fallback: 3 },
    { name: 'lines', fallback: 1_000_000 },
  ]);
  if (other === '--help' || other === '-h') {
    console.log(USAGE);
    process.exit(0);
  }
  if (other === undefined || !existsSync(join(other, 'dist', 'bench', 'e2e-bench.js'))) {
    console.error(`${other === undefined ? 'no other checkout given' : `${other} has no dist/bench/e2e-bench.js (build it first)`}\n${USAGE}`);
    process.exit(2);
  }
  if (!rest.ok) {
    (rest.exitCode === 0 ? process.stdout : process.stderr).write(`${rest.text}\n`);
    process.exit(rest.exitCode);
  }
  const [pairs, lines] = rest.values as [number, number];
  main(resolve(other), pairs, lines).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

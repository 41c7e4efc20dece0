/**
 * `npm run bench`: every benchmark, one after the other (two cores: running them side by side would
 * measure contention), each as its own process so one's heap does not colour the next.
 * BENCH_LINES sets the end-to-end size (default 1,000,000 lines of 120 bytes).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const lines = process.env.BENCH_LINES ?? '1000000';

const runs: Array<{ title: string; command: string; args: string[] }> = [
  { title: 'collector: line cutting + chunk encoding', command: process.execPath, args: [join(here, 'collector-bench.js')] },
  { title: 'spool: group-committed appends', command: process.execPath, args: [join(here, 'spool-bench.js')] },
  { title: 'aeron: publication → receiver on loopback', command: process.execPath, args: [join(here, 'aeron-bench.js')] },
  { title: 'end to end, file emitter', command: process.execPath, args: [join(here, 'e2e-bench.js'), lines, '120', 'file'] },
  { title: 'end to end, blackhole emitter', command: process.execPath, args: [join(here, 'e2e-bench.js'), lines, '120', 'blackhole'] },
  { title: 'end to end latency at 20,000 lines/s', command: process.execPath, args: [join(here, 'latency-bench.js'), '20000', '5'] },
  { title: 'mega-collector against a tuned rsyslog, interleaved, medians of three', command: process.execPath, args: [join(here, 'compare.js'), lines, '120', '3'] },
];

let failed = 0;
for (const run of runs) {
  const script = run.args[0] as string;
  if (!existsSync(script)) {
    console.log(`\n## ${run.title}\n(skipped: ${script} not found)`);
    continue;
  }
  console.log(`\n## ${run.title}`);
  const result = spawnSync(run.command, run.args, { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);

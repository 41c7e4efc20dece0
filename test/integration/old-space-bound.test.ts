import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const built = (path: string): string => pathToFileURL(join(root, 'dist', 'src', path)).href;

/**
 * The bound with V8's real collector, in a child node started as the collector's first line starts it
 * (`--expose-gc`, 1 MiB semi-spaces): objects that survive scavenges are promoted, then dropped, and the
 * bound's full collection must give their space back. (`gc({ type: 'major' })` on Node 20 did not.)
 */
const PROGRAM = `
import { OldSpaceBound, exposedMajorGc, v8OldSpaceUsed } from ${JSON.stringify(built('util/old-space-bound.js'))};
import { systemClock } from ${JSON.stringify(built('util/clock.js'))};
const MiB = 1024 * 1024;
const collect = exposedMajorGc();
if (collect === undefined) { console.log(JSON.stringify({ exposed: false })); process.exit(0); }
const reports = [];
const bound = new OldSpaceBound({ clock: systemClock, slackBytes: 2 * MiB, checkEveryMs: 50, minIntervalMs: 0, collect,
  onCollect: (before, after) => reports.push([before, after]) });
bound.start();
let peak = 0;
let batch = [];
const tick = setInterval(() => {
  // Objects that live across a few scavenges (like chunks awaiting their ack), then die.
  for (let i = 0; i < 5000; i++) batch.push({ i, s: 'line ' + i });
  if (batch.length >= 60000) batch = [];
  peak = Math.max(peak, v8OldSpaceUsed());
}, 5);
setTimeout(() => {
  clearInterval(tick);
  bound.stop();
  console.log(JSON.stringify({ exposed: true, reports, peakMiB: peak / MiB }));
}, 3000);
`;

function run(nodeArgs: string[]): { exposed: boolean; reports?: Array<[number, number]>; peakMiB?: number } {
  const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', PROGRAM], { encoding: 'utf8', timeout: 30_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout.trim()) as { exposed: boolean; reports?: Array<[number, number]>; peakMiB?: number };
}

describe('OldSpaceBound with V8', () => {
  it('collects promoted garbage when the old space grows past the slack, and each collection gives space back', () => {
    const out = run(['--single-threaded-gc', '--max-semi-space-size=1', '--expose-gc']);
    expect(out.exposed).toBe(true);
    const reports = out.reports ?? [];
    console.log(`${reports.length} collections, old space peak ${out.peakMiB?.toFixed(1)} MiB; ${reports.map(([b, a]) => `${(b / 2 ** 20).toFixed(1)}→${(a / 2 ** 20).toFixed(1)}`).join(' ')}`);
    expect(reports.length).toBeGreaterThan(0);
    // Most collections free at least a MiB of the dead objects (one that runs while the live batch is
    // at its largest frees less: it promotes that batch too).
    const freed = reports.map(([before, after]) => before - after).sort((a, b) => a - b);
    expect(freed[Math.floor(freed.length / 2)]).toBeGreaterThan(2 ** 20);
  });

  it('is not there without --expose-gc (node file, not through the first line): the collector then runs unbounded', () => {
    expect(run(['--single-threaded-gc']).exposed).toBe(false);
  });
});

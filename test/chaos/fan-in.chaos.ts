import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { LineBook } from './accounting.js';
import type { Random } from './random.js';
import { ChaosRig, sleep, startWriting } from './rig.js';
import { chaosRow } from './row.js';
import type { RunOutcome } from './row.js';
import { CHAOS_SECONDS } from './settings.js';
import { slug } from './scenario.js';

/** Forty real collectors, each tailing its own directory, on one aggregator: every line once. */
const COLLECTORS = 40;

async function fanIn(random: Random, scenario: string): Promise<RunOutcome> {
  const rig = new ChaosRig(slug(scenario));
  try {
    const book = new LineBook(slug(scenario));
    const files = new Map<string, string>();
    await rig.startAggregator();
    const names = Array.from({ length: COLLECTORS }, (_, i) => `c${String(i).padStart(2, '0')}`);
    for (const n of names) {
      mkdirSync(join(rig.logs, n));
      files.set(n, join(rig.logs, n, 'app.log'));
    }
    const t0 = Date.now();
    // Operators' timers (not the fast test ones): forty idle collectors polling every 50 ms eat two cores.
    const env = { COLLECTOR_POLL_INTERVAL: '250ms', COLLECTOR_RESCAN_INTERVAL: '10s' };
    // A few at a time (forty Node processes booting at once on two cores take minutes), and every start
    // settled before a failure is thrown, so cleanup finds each process that did start.
    for (let i = 0; i < names.length; i += 8) {
      const started = await Promise.allSettled(names.slice(i, i + 8).map((n) => rig.startCollector(n, join(rig.logs, n, '*.log'), env, 60_000)));
      const failed = started.find((s) => s.status === 'rejected');
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    }
    const startMs = Date.now() - t0;
    const writer = startWriting({ book, random, files, linesPerSecond: 4000 });
    await sleep(CHAOS_SECONDS * 1000);
    await writer.stop();
    const t1 = Date.now();
    const lines = await rig.drain(book);
    const drainMs = Date.now() - t1;
    const dead = [...rig.collectors.values()].filter((c) => c.child.exitCode !== null).length;
    return { tally: book.tally(lines), problems: dead === 0 ? [] : [`${dead} collectors died`], note: `${COLLECTORS} collectors, started in ${(startMs / 1000).toFixed(1)} s, drained in ${(drainMs / 1000).toFixed(1)} s` };
  } finally {
    await rig.cleanup();
  }
}

describe('chaos: fan-in', () => {
  it('40 collectors on one aggregator', ({ task }) => chaosRow(task, (r) => fanIn(r, task.name)));
});

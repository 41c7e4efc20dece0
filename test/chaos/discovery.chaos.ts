import { appendFileSync, mkdirSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { LineBook } from './accounting.js';
import type { Random } from './random.js';
import { ChaosRig, sleep, startWriting } from './rig.js';
import { chaosRow } from './row.js';
import type { RunOutcome } from './row.js';
import { CHAOS_SECONDS } from './settings.js';
import { slug } from './scenario.js';

/**
 * Discovery under churn, with the operator's rescan interval (10 s) rather than the tests' fast one:
 * - 100 files a second created, written (1-20 lines) and deleted after living 50 ms to 3 s;
 * - a symlink named by the glob, created before its target exists; the target is then written and
 *   rotated (rename) halfway.
 */
const OPERATOR_RESCAN = { COLLECTOR_RESCAN_INTERVAL: '10s' };
/** Delivery may pause until the next rescan: wait that long without progress before counting losses. */
const RESCAN_WAIT_MS = 12_000;

async function churn(random: Random, scenario: string): Promise<RunOutcome> {
  const rig = new ChaosRig(slug(scenario));
  try {
    const book = new LineBook(slug(scenario));
    await rig.startAggregator();
    await rig.startCollector('c1', join(rig.logs, '*.log'), OPERATOR_RESCAN);
    const deletions: Array<Promise<void>> = [];
    const until = Date.now() + CHAOS_SECONDS * 1000;
    let created = 0;
    let shortLived = 0;
    let next = Date.now();
    while (Date.now() < until) {
      next += 10;
      await sleep(Math.max(0, next - Date.now()));
      const name = `f${created++}`;
      const path = join(rig.logs, `${name}.log`);
      appendFileSync(path, book.block(name, random.int(1, 21), () => random.int(20, 100)));
      const life = random.ms(50, 3000);
      if (life < 200) shortLived++;
      deletions.push(
        sleep(life).then(() => {
          if (random.next() < 0.5) appendFileSync(path, book.block(name, random.int(1, 5), () => random.int(20, 100)));
          unlinkSync(path);
        }),
      );
    }
    await Promise.all(deletions);
    const lines = await rig.drain(book, RESCAN_WAIT_MS);
    return { tally: book.tally(lines), note: `${created} files, ${shortLived} lived < 200 ms` };
  } finally {
    await rig.cleanup();
  }
}

async function symlinkFirst(random: Random, scenario: string): Promise<RunOutcome> {
  const rig = new ChaosRig(slug(scenario));
  try {
    const book = new LineBook(slug(scenario));
    const targetDir = join(rig.dir, 'target');
    const target = join(targetDir, 'app.log');
    symlinkSync(target, join(rig.logs, 'app.log'));
    await rig.startAggregator();
    await rig.startCollector('c1', join(rig.logs, '*.log'), OPERATOR_RESCAN);
    await sleep(random.ms(300, 1000));
    mkdirSync(targetDir);
    const writer = startWriting({ book, random, files: new Map([['app', target]]), linesPerSecond: 1500 });
    await sleep((CHAOS_SECONDS * 1000) / 2);
    renameSync(target, `${target}.1`);
    await sleep((CHAOS_SECONDS * 1000) / 2);
    await writer.stop();
    const lines = await rig.drain(book, RESCAN_WAIT_MS);
    return { tally: book.tally(lines), note: 'target rotated halfway' };
  } finally {
    await rig.cleanup();
  }
}

/**
 * Two files whose first kilobyte is the same (a common header, here 1,100 blanks before the first key),
 * written side by side: distinct files (distinct inodes) must both be read in full.
 */
async function sharedHeader(random: Random, scenario: string): Promise<RunOutcome> {
  const rig = new ChaosRig(slug(scenario));
  try {
    const book = new LineBook(slug(scenario));
    const files = new Map([
      ['a', join(rig.logs, 'a.log')],
      ['b', join(rig.logs, 'b.log')],
    ]);
    for (const [name, path] of files) appendFileSync(path, `${book.next(name, 80, 'x', ' '.repeat(1100))}\n`);
    await rig.startAggregator();
    await rig.startCollector('c1');
    const writer = startWriting({ book, random, files, linesPerSecond: 2000 });
    await sleep(CHAOS_SECONDS * 1000);
    await writer.stop();
    const lines = await rig.drain(book);
    return { tally: book.tally(lines) };
  } finally {
    await rig.cleanup();
  }
}

describe('chaos: discovery', () => {
  it('two files sharing their first KiB', ({ task }) => chaosRow(task, (r) => sharedHeader(r, task.name)));
  it('files churning at 100/s (created, written, deleted)', ({ task }) => chaosRow(task, (r) => churn(r, task.name)));
  it('symlink created before its target', ({ task }) => chaosRow(task, (r) => symlinkFirst(r, task.name)));
});

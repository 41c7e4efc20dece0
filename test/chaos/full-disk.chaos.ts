import { appendFileSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'vitest';
import { LineBook } from './accounting.js';
import type { Random } from './random.js';
import { ChaosRig, sleep } from './rig.js';
import { chaosRow, notRun } from './row.js';
import type { RunOutcome } from './row.js';
import { CHAOS_SECONDS, IS_ROOT } from './settings.js';
import { logFiles, slug } from './scenario.js';

/**
 * Small full volumes (tmpfs of 20 MiB, root only: `mount -t tmpfs`, unmounted after the run):
 * - the spool on it, with the default 64 MiB segments, and 1.5x the volume's size in lines shipped through;
 * - the output file on it, the volume filled with a ballast file until only a little is free, more lines
 *   than fit written, then the ballast deleted (what an operator does to free space).
 * Lines are 1 KiB, so the volumes fill within seconds.
 */
const VOLUME = '20m';
const VOLUME_BYTES = 20 * 1024 * 1024;
const LINE_PADDING = 1000;

async function writeVolume(book: LineBook, files: ReadonlyMap<string, string>, random: Random, bytes: number): Promise<void> {
  const names = [...files.keys()];
  const lines = Math.ceil(bytes / (LINE_PADDING + 25));
  const until = Date.now() + CHAOS_SECONDS * 1000;
  const perTick = Math.max(1, Math.ceil(lines / (CHAOS_SECONDS * 50)));
  for (let written = 0; written < lines; ) {
    const name = random.pick(names);
    const n = Math.min(perTick, lines - written);
    let text = '';
    for (let i = 0; i < n; i++) text += `${book.next(name, LINE_PADDING)}\n`;
    appendFileSync(files.get(name) as string, text);
    written += n;
    await sleep(Date.now() < until ? random.ms(10, 30) : 0);
  }
}

async function spoolFull(random: Random, scenario: string): Promise<RunOutcome> {
  const rig = new ChaosRig(slug(scenario));
  try {
    rig.mountTmpfs(rig.spoolDir, VOLUME);
    const book = new LineBook(slug(scenario));
    const files = logFiles(rig, ['a', 'b']);
    await rig.startAggregator();
    await rig.startCollector('c1');
    await writeVolume(book, files, random, VOLUME_BYTES * 1.5);
    const lines = await rig.drain(book);
    const problems = rig.aggregator?.child.exitCode === null ? [] : ['aggregator died'];
    return { tally: book.tally(lines), problems, note: `spool on a ${VOLUME} tmpfs, ${Math.round((VOLUME_BYTES * 1.5) / 2 ** 20)} MiB shipped` };
  } finally {
    await rig.cleanup();
  }
}

async function outputFull(random: Random, scenario: string): Promise<RunOutcome> {
  const rig = new ChaosRig(slug(scenario));
  try {
    const outDir = rig.mountTmpfs(dirname(rig.out), VOLUME);
    const ballast = join(outDir, 'ballast');
    const free = random.int(1, 4) * 1024 * 1024;
    const st = statfsSync(outDir);
    writeFileSync(ballast, Buffer.alloc(Math.max(0, st.bavail * st.bsize - free)));
    const book = new LineBook(slug(scenario));
    const files = logFiles(rig, ['a', 'b']);
    await rig.startAggregator();
    await rig.startCollector('c1');
    await writeVolume(book, files, random, free * 3);
    await sleep(random.ms(500, 2000)); // the emitter meets ENOSPC and retries
    unlinkSync(ballast);
    const lines = await rig.drain(book);
    const problems = rig.aggregator?.child.exitCode === null ? [] : ['aggregator died'];
    return { tally: book.tally(lines), problems, note: `output on a ${VOLUME} tmpfs with ${free / 2 ** 20} MiB free, 3x that written, then ballast removed` };
  } finally {
    await rig.cleanup();
  }
}

describe('chaos: small full volumes (root)', () => {
  it('spool on a full 20 MiB volume', ({ task, skip }) => {
    if (!IS_ROOT) {
      notRun(task, 'needs root (mount -t tmpfs)');
      skip();
    }
    return chaosRow(task, (r) => spoolFull(r, task.name));
  });
  it('output on a full 20 MiB volume, space freed later', ({ task, skip }) => {
    if (!IS_ROOT) {
      notRun(task, 'needs root (mount -t tmpfs)');
      skip();
    }
    return chaosRow(task, (r) => outputFull(r, task.name));
  });
});

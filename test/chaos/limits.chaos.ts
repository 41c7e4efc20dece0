import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { LineBook } from './accounting.js';
import type { Random } from './random.js';
import { ChaosRig, sleep, startWriting } from './rig.js';
import { chaosRow } from './row.js';
import type { RunOutcome } from './row.js';
import { CHAOS_SECONDS } from './settings.js';
import { logFiles, slug } from './scenario.js';

/**
 * Size limits that disagree between the two programs, and the collector's in-flight bound:
 * - COLLECTOR_BUFFER_MAX_BYTES=64MiB against the aggregator's default 16 MiB chunk limit, with a 24 MB
 *   backlog read in one go;
 * - 4 KiB lines among short ones under AGGREGATOR_MAX_LINE_BYTES=2KiB: the short lines must all arrive
 *   (the long ones are not in the book: split into pieces or dead-lettered, they are counted apart);
 * - COLLECTOR_MAX_INFLIGHT_BYTES=64KiB while the aggregator is frozen (SIGSTOP) and a file grows by a
 *   burst of a few hundred kB besides steady writing: the peak of
 *   unacknowledged bytes stays within one read of the bound (bound + min(1 MiB, bound)), nothing lost.
 */
async function bigBuffer(random: Random, scenario: string): Promise<RunOutcome> {
  const rig = new ChaosRig(slug(scenario));
  try {
    const book = new LineBook(slug(scenario));
    const files = logFiles(rig, ['a']);
    let text = '';
    for (let i = 0; i < 120_000; i++) text += `${book.next('a', random.int(150, 250))}\n`;
    writeFileSync(files.get('a') as string, text);
    await rig.startAggregator();
    await rig.startCollector('c1', join(rig.logs, '*.log'), { COLLECTOR_BUFFER_MAX_BYTES: '64MiB', COLLECTOR_BUFFER_TIMEOUT: '1s' });
    const lines = await rig.drain(book);
    return { tally: book.tally(lines), note: `${Math.round(Buffer.byteLength(text) / 1e6)} MB backlog` };
  } finally {
    await rig.cleanup();
  }
}

async function longLines(random: Random, scenario: string): Promise<RunOutcome> {
  const rig = new ChaosRig(slug(scenario), { aggregatorEnv: { AGGREGATOR_MAX_LINE_BYTES: '2KiB' } });
  try {
    const book = new LineBook(slug(scenario));
    const files = logFiles(rig, ['a', 'b']);
    await rig.startAggregator();
    await rig.startCollector('c1');
    const until = Date.now() + CHAOS_SECONDS * 1000;
    let long = 0;
    while (Date.now() < until) {
      const name = random.pick(['a', 'b']);
      let text = '';
      for (let i = random.int(5, 40); i > 0; i--) text += `${book.next(name, random.int(20, 120))}\n`;
      text += `long-${long++} ${'L'.repeat(4096)}\n`;
      for (let i = random.int(5, 40); i > 0; i--) text += `${book.next(name, random.int(20, 120))}\n`;
      appendFileSync(files.get(name) as string, text);
      await sleep(random.ms(20, 100));
    }
    const lines = await rig.drain(book);
    const tally = book.tally(lines, { allowForeign: true });
    return { tally, note: `${long} lines of 4 KiB, ${tally.foreign} output lines from them` };
  } finally {
    await rig.cleanup();
  }
}

async function inflightBound(random: Random, scenario: string): Promise<RunOutcome> {
  const bound = 64 * 1024;
  const limit = bound + Math.min(1024 * 1024, bound);
  const rig = new ChaosRig(slug(scenario));
  try {
    const book = new LineBook(slug(scenario));
    const files = logFiles(rig, ['a', 'b', 'c']);
    const agg = await rig.startAggregator();
    const collector = await rig.startCollector('c1', join(rig.logs, '*.log'), { COLLECTOR_MAX_INFLIGHT_BYTES: '64KiB' });
    await sleep(300);
    agg.child.kill('SIGSTOP');
    let peak = 0;
    const writer = startWriting({ book, random, files, linesPerSecond: 8000 });
    // A burst of a few hundred kB, as a busy application writes: one unbounded read would take it whole.
    const burst = random.pick(['a', 'b', 'c']);
    appendFileSync(files.get(burst) as string, book.block(burst, random.int(2000, 5000), () => random.int(100, 150)));
    try {
      const until = Date.now() + Math.max(2000, (CHAOS_SECONDS * 1000) / 2);
      while (Date.now() < until) {
        peak = Math.max(peak, await collector.metric('mega_collector_inflight_bytes'));
        await sleep(50);
      }
      // After the in-flight fix the collector also exports its own high-water mark.
      peak = Math.max(peak, await collector.metric('mega_collector_inflight_peak_bytes'));
    } finally {
      agg.child.kill('SIGCONT');
      await writer.stop();
    }
    const lines = await rig.drain(book);
    const problems = peak > limit ? [`${peak} B in flight, over ${limit} B (bound 64 KiB + one read)`] : [];
    return { tally: book.tally(lines), problems, note: `in-flight peak ${peak} B` };
  } finally {
    await rig.cleanup();
  }
}

describe('chaos: size limits and the in-flight bound', () => {
  it('collector buffer 64 MiB against a 16 MiB chunk limit', ({ task }) => chaosRow(task, (r) => bigBuffer(r, task.name)));
  it('4 KiB lines under AGGREGATOR_MAX_LINE_BYTES=2KiB', ({ task }) => chaosRow(task, (r) => longLines(r, task.name)));
  it('COLLECTOR_MAX_INFLIGHT_BYTES=64KiB, aggregator frozen', ({ task }) => chaosRow(task, (r) => inflightBound(r, task.name)));
});

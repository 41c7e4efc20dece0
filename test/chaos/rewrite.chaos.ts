import { appendFileSync, closeSync, ftruncateSync, openSync, renameSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { describe, it } from 'vitest';
import { LineBook } from './accounting.js';
import type { Random } from './random.js';
import { ChaosRig } from './rig.js';
import { chaosRow } from './row.js';
import type { RunOutcome } from './row.js';
import { logFiles, slug } from './scenario.js';

/**
 * A file's content changes under a stopped collector: truncated and regrown, rewritten in place (same
 * inode, overwritten from offset 0), or replaced by a rename over it. "Same layout": the new lines have
 * exactly the lengths of the old ones, the first kilobyte is the same and so are the bytes just before
 * the old checkpoint (see `generation`); "different layout": other lengths, nothing shared. The new generation is shorter, as long, or longer than the old,
 * at random. Every line of both generations must arrive: the old ones before the stop, the new ones after
 * the restart.
 */
type Change = 'truncation' | 'in-place rewrite' | 'replacement (rename over)';

const FILES = ['a', 'b'];

/**
 * Same layout: the first line starts with 1,100 blanks, so both generations of a file share their first
 * kilobyte, and every line ends in at least 70 bytes of the same padding, so the bytes before any line end
 * match. The blanks begin with one tab per file index, so that different files do not share their first
 * bytes (that case is a row of its own, in discovery.chaos.ts).
 */
function generation(book: LineBook, file: string, lengths: readonly number[], sameLayout: boolean): string {
  const lead = `${'\t'.repeat(FILES.indexOf(file) + 1)}${' '.repeat(1100)}`;
  let text = '';
  lengths.forEach((pad, i) => {
    text += `${book.next(file, pad, 'x', sameLayout && i === 0 ? lead : '')}\n`;
  });
  return text;
}

async function rewriteRun(change: Change, sameLayout: boolean, random: Random, scenario: string): Promise<RunOutcome> {
  const rig = new ChaosRig(slug(scenario));
  try {
    const book = new LineBook(slug(scenario));
    const files = logFiles(rig, FILES);
    await rig.startAggregator();
    const old = new Map<string, number[]>();
    for (const [name, path] of files) {
      const lengths = Array.from({ length: random.int(200, 3000) }, () => random.int(70, 200));
      old.set(name, lengths);
      writeFileSync(path, generation(book, name, lengths, sameLayout));
    }
    await rig.startCollector('c1');
    await rig.drain(book);
    const code = await rig.collectors.get('c1')?.stop();
    const problems: string[] = code === 0 ? [] : [`collector exited ${code} on SIGTERM`];
    const shapes: string[] = [];
    for (const [name, path] of files) {
      const before = old.get(name) ?? [];
      const shape = random.pick(['shorter', 'as long', 'longer'] as const);
      shapes.push(shape);
      const count = shape === 'shorter' ? random.int(1, before.length) : shape === 'as long' ? before.length : random.int(before.length + 1, before.length * 2);
      const lengths = Array.from({ length: count }, (_, i) => (sameLayout ? (before[i % before.length] as number) : random.int(20, 300)));
      const text = generation(book, name, lengths, sameLayout);
      if (change === 'truncation') {
        truncateSync(path, 0);
        appendFileSync(path, text);
      } else if (change === 'in-place rewrite') {
        const fd = openSync(path, 'r+');
        writeSync(fd, text, 0);
        ftruncateSync(fd, Buffer.byteLength(text));
        closeSync(fd);
      } else {
        writeFileSync(`${path}.new`, text);
        renameSync(`${path}.new`, path);
      }
    }
    await rig.startCollector('c1');
    const lines = await rig.drain(book);
    return { tally: book.tally(lines), problems, note: `new generation ${[...new Set(shapes)].join('/')}` };
  } finally {
    await rig.cleanup();
  }
}

describe('chaos: content changed while the collector is stopped', () => {
  for (const change of ['truncation', 'in-place rewrite', 'replacement (rename over)'] as const) {
    for (const same of [true, false]) {
      it(`${change} while stopped, ${same ? 'same' : 'different'} line layout`, ({ task }) => chaosRow(task, (r) => rewriteRun(change, same, r, task.name)));
    }
  }
});

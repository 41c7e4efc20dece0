import { join } from 'node:path';
import { LineBook } from './accounting.js';
import type { Tally, TallyOptions } from './accounting.js';
import type { Random } from './random.js';
import { ChaosRig, startWriting } from './rig.js';
import type { Writer } from './rig.js';
import type { RunOutcome } from './row.js';

/**
 * The common frame of most rows: a rig, a book named after the row, a few log files written at a steady
 * random rate while `during` does its damage, then a drain and the tally. `during` gets the time budget
 * in ms and returns problems and a note; the frame always cleans up.
 */
export interface SimpleRun {
  readonly rig: ChaosRig;
  readonly book: LineBook;
  readonly random: Random;
  readonly files: ReadonlyMap<string, string>;
}

export function logFiles(rig: ChaosRig, names: readonly string[], ext = '.log'): Map<string, string> {
  return new Map(names.map((n) => [n, join(rig.logs, `${n}${ext}`)]));
}

export function slug(scenario: string): string {
  return scenario.replace(/[^a-z0-9]+/gi, '').slice(0, 12).toLowerCase();
}

export interface ProcessRunOptions {
  readonly scenario: string;
  readonly random: Random;
  readonly linesPerSecond: number;
  readonly files?: readonly string[];
  readonly collectorEnv?: Record<string, string>;
  readonly aggregatorEnv?: Record<string, string>;
  readonly makeOutDir?: boolean;
  /** Wait at least this long without progress before counting what is missing as lost. */
  readonly minQuietMs?: number;
  readonly glob?: (rig: ChaosRig) => string;
  readonly tallyOptions?: (rig: ChaosRig, book: LineBook) => TallyOptions;
  during(run: SimpleRun, writer: Writer): Promise<{ problems?: string[]; note?: string }>;
}

export async function writeDuring(options: ProcessRunOptions): Promise<RunOutcome> {
  const rig = new ChaosRig(slug(options.scenario), { aggregatorEnv: options.aggregatorEnv ?? {}, makeOutDir: options.makeOutDir ?? true });
  try {
    const book = new LineBook(slug(options.scenario));
    const files = logFiles(rig, options.files ?? ['a', 'b', 'c']);
    await rig.startAggregator();
    await rig.startCollector('c1', options.glob?.(rig) ?? join(rig.logs, '*.log'), options.collectorEnv ?? {});
    const writer = startWriting({ book, random: options.random, files, linesPerSecond: options.linesPerSecond });
    let result: { problems?: string[]; note?: string };
    try {
      result = await options.during({ rig, book, random: options.random, files }, writer);
    } finally {
      await writer.stop();
    }
    const lines = await rig.drain(book, options.minQuietMs ?? 0);
    const tally: Tally = book.tally(lines, options.tallyOptions?.(rig, book) ?? {});
    const drained = rig.drainEnd === 'complete' ? '' : rig.drainEnd === 'stalled' ? 'delivery stalled' : 'drain deadline (90 s) reached while lines still arrived';
    return { tally, problems: result.problems ?? [], note: [result.note ?? '', drained].filter((n) => n !== '').join(', ') };
  } finally {
    await rig.cleanup();
  }
}

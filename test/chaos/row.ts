import { expect } from 'vitest';
import type { Test } from 'vitest';
import { ZERO_TALLY, addTallies } from './accounting.js';
import type { Tally } from './accounting.js';
import { runSeed, seededRandom } from './random.js';
import type { Random } from './random.js';
import { CHAOS_RUNS, CHAOS_SEED } from './settings.js';

/**
 * One row of the chaos matrix: runs a scenario CHAOS_RUNS times with seeded random timings, sums the runs'
 * line accounting, attaches the row to the vitest task (the table reporter prints it) and fails the test
 * when a line was lost or changed, when duplicates appear where none are allowed, or when a run reported
 * another problem (a process that died, a missing PagerDuty event, an accepted intruder).
 */
export interface ChaosRow {
  readonly scenario: string;
  readonly runs: number;
  readonly tally: Tally;
  /** `ok`, `FAIL: ...` or `not run: ...`. */
  readonly result: string;
  readonly note: string;
  readonly seed: number;
}

declare module 'vitest' {
  interface TaskMeta {
    chaosRow?: ChaosRow;
  }
}

export interface RunOutcome {
  readonly tally: Tally;
  /** Anything besides line accounting that makes the run fail. */
  readonly problems?: readonly string[];
  /** Short facts for the note column (e.g. "kills 6", "events trigger,resolve"). */
  readonly note?: string;
}

export interface RowOptions {
  /** kill -9 rows: replays after a crash are allowed (and counted). */
  readonly duplicatesAllowed?: boolean;
  readonly runs?: number;
  /** A row about refusals (e.g. a program that must not start): writes no lines. */
  readonly noLines?: boolean;
}

export type RunScenario = (random: Random, run: number) => Promise<RunOutcome>;

function judge(tally: Tally, problems: readonly string[], options: RowOptions): string {
  const reasons: string[] = [];
  if (tally.lost > 0) reasons.push(`${tally.lost} lost`);
  if (tally.changed > 0) reasons.push(`${tally.changed} changed`);
  if (tally.duplicated > 0 && options.duplicatesAllowed !== true) reasons.push(`${tally.duplicated} duplicated`);
  if (tally.written === 0 && options.noLines !== true && problems.length === 0) reasons.push('nothing written');
  reasons.push(...problems);
  return reasons.length === 0 ? 'ok' : `FAIL: ${reasons.join('; ')}`;
}

export async function chaosRow(task: Test, scenario: RunScenario, options: RowOptions = {}): Promise<ChaosRow> {
  const name = task.name;
  const runs = options.runs ?? CHAOS_RUNS;
  let tally = ZERO_TALLY;
  const problems: string[] = [];
  const notes: string[] = [];
  for (let run = 0; run < runs; run++) {
    const random = seededRandom(runSeed(name, run));
    try {
      const outcome = await scenario(random, run);
      tally = addTallies(tally, outcome.tally);
      for (const p of outcome.problems ?? []) problems.push(`run ${run + 1}: ${p}`);
      if (outcome.note !== undefined && outcome.note !== '') notes.push(outcome.note);
    } catch (err) {
      problems.push(`run ${run + 1}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const row: ChaosRow = {
    scenario: name,
    runs,
    tally,
    result: judge(tally, problems, options),
    note: [...new Set(notes)].join('; ').slice(0, 300),
    seed: CHAOS_SEED,
  };
  task.meta.chaosRow = row;
  expect(row.result, `${name}: ${row.result} (lost sample: ${tally.lostSample.join(', ')})`).toBe('ok');
  return row;
}

/** A row that cannot run here (e.g. needs root): reported as such in the table and skipped, never passed. */
export function notRun(task: Test, why: string): void {
  task.meta.chaosRow = { scenario: task.name, runs: 0, tally: ZERO_TALLY, result: `not run: ${why}`, note: '', seed: CHAOS_SEED };
}

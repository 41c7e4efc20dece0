import { writeFileSync } from 'node:fs';
import type { Reporter, TestModule } from 'vitest/node';
import { ZERO_TALLY } from './accounting.js';
import type { ChaosRow } from './row.js';
import { CHAOS_QUIET_SECONDS, CHAOS_RUNS, CHAOS_SECONDS, CHAOS_SEED } from './settings.js';
import { formatTable } from './table.js';

/**
 * Vitest reporter of the chaos matrix: after the run, prints one table row per scenario (from the row each
 * test attached to its task), the seed to replay it, and, with CHAOS_TABLE_FILE set, writes the table there.
 * A test that died before attaching its row still gets one, marked FAIL with its error.
 */
export class ChaosTableReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const rows: ChaosRow[] = [];
    for (const m of testModules) {
      for (const test of m.children.allTests()) {
        const row = test.meta().chaosRow;
        if (row !== undefined) {
          rows.push(row);
          continue;
        }
        const result = test.result();
        if (result.state === 'skipped' || result.state === 'pending') continue; // filtered out with -t
        const error = result.state === 'failed' ? (result.errors?.[0]?.message ?? 'failed') : result.state;
        rows.push({ scenario: test.name, runs: 0, tally: ZERO_TALLY, result: `FAIL: ${error.split('\n')[0]}`, note: '', seed: CHAOS_SEED });
      }
    }
    const table = formatTable(rows);
    const failing = rows.filter((r) => r.result.startsWith('FAIL')).length;
    const notRun = rows.filter((r) => r.result.startsWith('not run')).length;
    const footer = [
      `seed ${CHAOS_SEED}, CHAOS_RUNS=${CHAOS_RUNS}, CHAOS_SECONDS=${CHAOS_SECONDS}, CHAOS_QUIET_SECONDS=${CHAOS_QUIET_SECONDS}: ${rows.length} rows, ${failing} failing, ${notRun} not run`,
      `replay one row: CHAOS_SEED=${CHAOS_SEED} CHAOS_RUNS=${CHAOS_RUNS} CHAOS_SECONDS=${CHAOS_SECONDS} npm run test:chaos -- -t '<scenario>'`,
    ].join('\n');
    process.stdout.write(`\nChaos matrix\n\n${table}\n\n${footer}\n`);
    const file = process.env.CHAOS_TABLE_FILE;
    if (file !== undefined && file !== '') writeFileSync(file, `${table}\n\n${footer}\n`);
  }
}

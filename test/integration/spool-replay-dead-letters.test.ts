import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEAD_LETTER_FILE } from '../../src/spool/dead-letters.js';
import { Spool } from '../../src/spool/spool.js';
import { decodeEntries, encodeEntries } from '../../src/wire/entry-batch.js';
import { runAggregator } from '../helpers/aggregator-process.js';
import { buildEntries } from '../helpers/ingest-client.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

/**
 * Issue 8, case 6: `mega-aggregator spool replay-dead-letters` run by an operator (a real process).
 * Dead letters are uniquely numbered lines; what the emitter received and what the dead-letter file
 * still holds are counted after each run.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function workDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mc-replay-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `letters` dead letters of `perLetter` numbered lines each (`dead-<letter>-<line>` plus padding). */
async function makeDeadLetters(spoolDir: string, letters: number, perLetter: number, padding = 0): Promise<string[]> {
  const spool = await Spool.open({ dir: spoolDir, maxBytes: 64 * 1024 * 1024 });
  const lines: string[] = [];
  try {
    for (let l = 0; l < letters; l++) {
      const batch = Array.from({ length: perLetter }, (_, i) => `dead-${String(l).padStart(3, '0')}-${String(i).padStart(4, '0')}${'.'.repeat(padding)}`);
      lines.push(...batch);
      const entries = decodeEntries(buildEntries(batch.map((b) => ({ data: Buffer.from(b) }))).entries);
      await spool.deadLetter(encodeEntries(entries), `test: refused for good (${l})`);
    }
  } finally {
    await spool.close();
  }
  return lines;
}

async function outputLines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
}

/** The lines still in the dead-letter file. */
async function remainingLines(spoolDir: string): Promise<string[]> {
  const letters = await Spool.readDeadLetters(spoolDir);
  return letters.flatMap((l) => decodeEntries(l.data).map((e) => Buffer.from(e.line).toString('utf8')));
}

describe('spool replay-dead-letters', () => {
  it('refuses without an emitter configured on purpose (exit 2, one line naming the variables) and leaves the file byte for byte', async () => {
    const dir = await workDir();
    const spoolDir = join(dir, 'spool');
    await makeDeadLetters(spoolDir, 3, 10);
    const before = await readFile(join(spoolDir, DEAD_LETTER_FILE));
    // A bare shell: only the spool directory. And a text emitter switched off (a falsy value).
    const envs: Array<Record<string, string>> = [{ AGGREGATOR_SPOOL_DIR: spoolDir }, { AGGREGATOR_SPOOL_DIR: spoolDir, AGGREGATOR_TEXT_CONFIGURATION: '0' }];
    for (const env of envs) {
      const run = await runAggregator(env, ['spool', 'replay-dead-letters']);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(/no emitter configured/);
      for (const v of ['AGGREGATOR_FILE_CONFIGURATION', 'AGGREGATOR_TEXT_CONFIGURATION', 'AGGREGATOR_AERON_CONFIGURATION']) expect(run.stderr).toContain(v);
      const after = await readFile(join(spoolDir, DEAD_LETTER_FILE));
      expect(after.equals(before)).toBe(true);
    }
    const status = await runAggregator({ AGGREGATOR_SPOOL_DIR: spoolDir }, ['spool', 'status']);
    expect(status.stdout).toMatch(/dead letters:\s+30/);
  });

  it('into a file emitter: delivers every dead letter, in order, and only then removes them', async () => {
    const dir = await workDir();
    const spoolDir = join(dir, 'spool');
    const out = join(dir, 'replayed.log');
    const written = await makeDeadLetters(spoolDir, 20, 50);
    const run = await runAggregator(
      { AGGREGATOR_SPOOL_DIR: spoolDir, AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out }) },
      ['spool', 'replay-dead-letters'],
    );
    const got = await outputLines(out);
    console.log(`replay into a file: ${written.length} dead lines, ${got.length} emitted, ${(await remainingLines(spoolDir)).length} left`);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/replayed 20 of 20 dead letters \(1000 entries\)/);
    expect(got).toEqual(written);
    expect(await Spool.readDeadLetters(spoolDir)).toEqual([]);
  });

  it('a failing emitter keeps every dead letter (exit 1, file byte for byte)', async () => {
    const dir = await workDir();
    const spoolDir = join(dir, 'spool');
    await makeDeadLetters(spoolDir, 5, 10);
    const before = await readFile(join(spoolDir, DEAD_LETTER_FILE));
    // The output's directory is a regular file: every write fails.
    await writeFile(join(dir, 'not-a-dir'), 'x');
    const run = await runAggregator(
      {
        AGGREGATOR_SPOOL_DIR: spoolDir,
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: join(dir, 'not-a-dir', 'out.log') }),
        AGGREGATOR_EMIT_MAX_RETRIES: '1',
        AGGREGATOR_EMIT_RETRY_INITIAL_DELAY: '10ms',
        AGGREGATOR_EMIT_RETRY_MAX_DELAY: '20ms',
      },
      ['spool', 'replay-dead-letters'],
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/replayed 0 of 5 dead letters \(0 entries\); stopped: retryable: /);
    expect((await readFile(join(spoolDir, DEAD_LETTER_FILE))).equals(before)).toBe(true);
  });

  it('an emitter that fails part way (its volume fills): the confirmed ones are removed, the rest kept, and further replays finish them', async () => {
    const dir = await workDir();
    const spoolDir = join(dir, 'spool');
    const outDir = join(dir, 'out');
    await mkdir(outDir);
    cleanups.push(await mountTmpfs(outDir, '256k'));
    const out = join(outDir, 'replayed.log');
    // 40 letters of 20 lines of ~1 KiB: ~800 KiB, far more than the 256 KiB output volume holds.
    const written = await makeDeadLetters(spoolDir, 40, 20, 1000);
    const env = {
      AGGREGATOR_SPOOL_DIR: spoolDir,
      AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out }),
      AGGREGATOR_EMIT_MAX_RETRIES: '0',
    };
    const first = await runAggregator(env, ['spool', 'replay-dead-letters']);
    expect(first.code).toBe(1);
    const m = /replayed (\d+) of 40 dead letters \((\d+) entries\); stopped: retryable: .*ENOSPC/.exec(first.stdout);
    expect(m, first.stdout).not.toBeNull();
    const replayed = Number(m?.[1]);
    expect(replayed).toBeGreaterThan(0);
    expect(replayed).toBeLessThan(40);
    const emitted = new Set(await outputLines(out));
    const left = await remainingLines(spoolDir);
    // What was removed is exactly the first `replayed` letters, and every one of their lines is in the output.
    expect(left).toEqual(written.slice(replayed * 20));
    const removed = written.slice(0, replayed * 20);
    expect(removed.filter((l) => !emitted.has(l))).toEqual([]);
    console.log(`replay into a 256 KiB volume: ${replayed} of 40 letters confirmed and removed, ${left.length} lines kept`);

    // Room again (a consumer takes the file away each time): further replays finish the rest, each
    // one moving on, and every dead line reaches the output.
    const delivered = new Set(emitted);
    let left2 = left.length;
    for (let pass = 0; left2 > 0; pass++) {
      expect(pass).toBeLessThan(10);
      await rm(out);
      const again = await runAggregator(env, ['spool', 'replay-dead-letters']);
      for (const l of await outputLines(out)) delivered.add(l);
      const now = (await remainingLines(spoolDir)).length;
      expect(now, again.stdout).toBeLessThan(left2);
      expect(again.code).toBe(now === 0 ? 0 : 1);
      left2 = now;
    }
    expect(written.filter((l) => !delivered.has(l))).toEqual([]);
    expect(await Spool.readDeadLetters(spoolDir)).toEqual([]);
  });
});

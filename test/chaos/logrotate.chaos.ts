import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'vitest';
import type { Random } from './random.js';
import { sleep } from './rig.js';
import type { ChaosRig } from './rig.js';
import { chaosRow } from './row.js';
import { CHAOS_SECONDS } from './settings.js';
import { writeDuring } from './scenario.js';

/**
 * Rotation by Debian's real `logrotate` (its own config and state file in the run's directory, forced with
 * -f every 1-3 s) while three files are written: `create` (rename, new file) and `copytruncate` (copy
 * aside, truncate in place), each with a glob naming only the live files and with one naming the rotated
 * copies too. Lines written between logrotate's copy and its truncate are in no file at the end: they are
 * counted as window-lost, apart from lost.
 */
const run = promisify(execFile);

type Mode = 'create' | 'copytruncate';

function writeConfig(rig: ChaosRig, mode: Mode): { conf: string; state: string } {
  const conf = join(rig.dir, 'logrotate.conf');
  const state = join(rig.dir, 'logrotate.state');
  const files = ['a', 'b', 'c'].map((n) => join(rig.logs, `${n}.log`)).join(' ');
  writeFileSync(conf, `${files} {\n  ${mode}\n  rotate 10000\n  missingok\n  nocompress\n  nodateext\n}\n`, { mode: 0o644 });
  return { conf, state };
}

/** Every line still in some file of the log directory (live files and rotated copies). */
function linesOnDisk(rig: ChaosRig): Set<string> {
  const out = new Set<string>();
  for (const name of readdirSync(rig.logs)) {
    for (const l of readFileSync(join(rig.logs, name), 'utf8').split('\n')) if (l !== '') out.add(l);
  }
  return out;
}

function rotation(mode: Mode, rotatedInGlob: boolean, random: Random, scenario: string): ReturnType<typeof writeDuring> {
  return writeDuring({
    scenario,
    random,
    linesPerSecond: 3000,
    glob: (rig) => join(rig.logs, rotatedInGlob ? '*.log*' : '*.log'),
    tallyOptions: mode === 'copytruncate' ? (rig) => ({ onDisk: linesOnDisk(rig) }) : undefined,
    during: async ({ rig }) => {
      const { conf, state } = writeConfig(rig, mode);
      const until = Date.now() + CHAOS_SECONDS * 1000;
      let rotations = 0;
      let errors = 0;
      let lastError = '';
      while (Date.now() < until) {
        await sleep(random.ms(1000, 3000));
        try {
          await run('logrotate', ['-f', '-s', state, conf]);
        } catch (err) {
          // create mode: the writer may recreate the live file before logrotate does ("File exists").
          errors++;
          lastError = ((err as { stderr?: string }).stderr ?? String(err)).split('\n')[0] ?? '';
        }
        rotations++;
      }
      const note = `logrotate -f x${rotations}${errors > 0 ? `, ${errors} exited non-zero (${lastError.slice(0, 80)})` : ''}`;
      return { note };
    },
  });
}

async function hasLogrotate(): Promise<boolean> {
  try {
    await run('logrotate', ['--version']);
    return true;
  } catch {
    return false;
  }
}

describe('chaos: logrotate', async () => {
  const available = await hasLogrotate();
  const rows: Array<[Mode, boolean]> = [
    ['create', false],
    ['create', true],
    ['copytruncate', false],
    ['copytruncate', true],
  ];
  for (const [mode, rotated] of rows) {
    const name = `logrotate ${mode}, glob ${rotated ? 'with' : 'without'} rotated names`;
    it(name, async ({ task }) => {
      if (!available) throw new Error('logrotate is not installed (Debian: apt-get install logrotate)');
      await chaosRow(task, (r) => rotation(mode, rotated, r, task.name));
    });
  }
});

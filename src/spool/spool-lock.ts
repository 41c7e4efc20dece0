import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, McError } from '../errors.js';
import { isErrno } from './durable-fs.js';

export const LOCK_FILE = 'spool.lock';

interface LockContent {
  readonly pid: number;
  /** Process start time (clock ticks since boot, /proc/PID/stat field 22): tells a reused pid apart. */
  readonly start?: string;
}

/** Directories locked by this process: a pid check alone cannot see a second open in the same process. */
const heldHere = new Set<string>();

async function processStart(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM'); // exists, owned by someone else
  }
}

/** Whether the process that wrote `content` still runs (a lock from a dead or reused pid is stale). */
async function holderAlive(content: LockContent): Promise<boolean> {
  if (!Number.isSafeInteger(content.pid) || content.pid <= 0) return false;
  if (content.pid === process.pid) return false; // our pid, but not held here (checked before): a previous life of a container
  if (!pidAlive(content.pid)) return false;
  if (content.start === undefined) return true;
  const start = await processStart(content.pid);
  return start === undefined || start === content.start;
}

/**
 * An exclusive lock on a spool directory: a file `spool.lock` with the holder's pid, created with
 * O_EXCL. A lock whose holder is gone is taken over, so a crash never needs a manual clean-up.
 */
export class SpoolLock {
  private released = false;

  private constructor(
    readonly dir: string,
    private readonly path: string,
  ) {}

  static async acquire(dir: string): Promise<SpoolLock> {
    const path = join(dir, LOCK_FILE);
    if (heldHere.has(path)) throw locked(dir, `it is already open in this process (pid ${process.pid})`);
    const content = JSON.stringify({ pid: process.pid, start: await processStart(process.pid) } satisfies LockContent);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await open(path, 'wx');
        try {
          await fh.writeFile(content);
          await fh.sync();
        } finally {
          await fh.close();
        }
        heldHere.add(path);
        return new SpoolLock(dir, path);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      let holder: LockContent;
      try {
        holder = JSON.parse(await readFile(path, 'utf8')) as LockContent;
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue; // released meanwhile
        holder = { pid: 0 }; // unreadable or half-written lock: its writer died before finishing it
      }
      if (await holderAlive(holder)) throw locked(dir, `process ${holder.pid} holds ${path}`);
      await rm(path, { force: true });
    }
    throw locked(dir, `could not take over the stale lock ${path}`);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.path);
    await rm(this.path, { force: true });
  }
}

function locked(dir: string, why: string): McError {
  return new McError(ErrorCode.SpoolLocked, `spool directory ${dir} is in use: ${why}`);
}

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * Makes sure a data directory (spool, collector state) exists and takes files, before the program
 * opens it: made one level at a time, then probed by creating and removing a file.
 *
 * Why not `mkdir(dir, { recursive: true })`: under /proc (and other pseudo file systems) mkdir of
 * a missing child answers ENOENT although the parent exists, and Node's recursive mkdir then loops
 * forever in a thread-pool thread: 100 % CPU, no error, and a SIGTERM handler that never gets to
 * run its drain. A path under a regular file must also fail here, with the path named.
 * Throws a DirectoryError whose message says what is wrong with `dir` (the caller names the variable).
 */
export class DirectoryError extends Error {
  /** The errno code behind it (ENOTDIR, ENOENT, EACCES, EROFS, ...). */
  readonly code: string;

  constructor(message: string, code: string, cause?: unknown) {
    super(`${message} (${code})`, { cause });
    this.name = 'DirectoryError';
    this.code = code;
  }
}

export async function prepareDirectory(dir: string): Promise<void> {
  const absolute = resolve(dir);
  await makeDirectory(absolute);
  const probe = `${absolute}/.mc-write-probe-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const handle = await open(probe, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
    await handle.close();
    await unlink(probe);
  } catch (err) {
    throw new DirectoryError(`directory "${absolute}" does not take files`, codeOf(err), err);
  }
}

async function makeDirectory(dir: string): Promise<void> {
  const info = await stat(dir).catch((err: unknown) => {
    if (codeOf(err) === 'ENOENT') return undefined;
    throw new DirectoryError(`cannot use "${dir}"`, codeOf(err), err);
  });
  if (info !== undefined) {
    if (!info.isDirectory()) throw new DirectoryError(`"${dir}" exists and is not a directory`, 'ENOTDIR');
    return;
  }
  const parent = dirname(dir);
  if (parent === dir) throw new DirectoryError(`cannot use "${dir}"`, 'ENOENT');
  await makeDirectory(parent);
  try {
    await mkdir(dir);
  } catch (err) {
    if (codeOf(err) === 'EEXIST') return makeDirectory(dir);
    throw new DirectoryError(`cannot create directory "${dir}"`, codeOf(err), err);
  }
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}

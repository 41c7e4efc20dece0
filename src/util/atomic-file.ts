import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * fsync a directory, so that a file created, renamed or removed in it survives a power loss (the
 * entry lives in the directory, not in the file).
 */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `data` atomically: write `<path>.tmp`, rename it over `path`. With `durable`,
 * the temp file is fsynced before the rename and the directory after it, so the new content survives
 * a power loss; without, a crash leaves the old content or the new one, never a torn file.
 */
export async function replaceFileAtomic(path: string, data: Buffer | string, durable: boolean): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
  if (durable) await fsyncDir(dirname(path));
}

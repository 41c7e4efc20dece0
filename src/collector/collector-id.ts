import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * COLLECTOR_ID when not configured: generated once and kept in the state dir, so entry identities
 * (collector id, file id, offset) stay stable across restarts.
 */
export async function loadOrCreateCollectorId(stateDir: string): Promise<string> {
  await mkdir(stateDir, { recursive: true });
  const file = join(stateDir, 'collector-id');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (id !== '') return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = randomUUID();
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(`${id}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  return id;
}

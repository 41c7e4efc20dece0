import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Mounts a tmpfs of `size` (mount(8) syntax: "20m") on `dir`, for tests of full volumes. Needs root
 * (CI runs as root). There is no fallback: a test that cannot mount fails, naming why, instead of
 * passing without having tested anything. Returns the unmount function (lazy unmount as a last
 * resort, so a leftover open file cannot keep the mount alive).
 */
export async function mountTmpfs(dir: string, size: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  } catch (err) {
    const uid = process.getuid?.();
    throw new Error(
      `this test needs a ${size} tmpfs volume at ${dir} and could not mount one (uid ${uid}; run as root, as CI does): ` +
        `${err instanceof Error ? err.message : String(err)}`,
    );
  }
  let mounted = true;
  return async () => {
    if (!mounted) return;
    mounted = false;
    await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
  };
}

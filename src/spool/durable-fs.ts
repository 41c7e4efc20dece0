import { fsyncDir, replaceFileAtomic } from '../util/atomic-file.js';

export { fsyncDir };

/** Replaces `path` with `data` atomically and durably: temp file fsynced, renamed, directory fsynced. */
export async function writeFileAtomic(path: string, data: Buffer | string): Promise<void> {
  await replaceFileAtomic(path, data, true);
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

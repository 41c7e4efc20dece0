import { fstat as fstatCb, read as readCb } from 'node:fs';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';

const readAsync = promisify(readCb);
const fstatAsync = promisify(fstatCb);

/**
 * What a tailer asks of the file system, by descriptor and by path: the whole of its I/O, so that the
 * tailer's decisions (truncated, rotated, finished, what was cut) can be tested on files in memory.
 */
export interface TailIo {
  /** Reads into `buf[offset, offset + length)` from file `position`; resolves to the bytes read. */
  read(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** The open file's size and link count (0 links: deleted, still readable through `fd`). */
  fstat(fd: number): Promise<{ readonly size: number; readonly nlink: number }>;
  /** Device and inode of the file `path` names now, or undefined when it names none. */
  stat(path: string): Promise<{ readonly dev: number; readonly ino: number } | undefined>;
}

/** The tailer's I/O on the real file system. */
export const nodeTailIo: TailIo = {
  read: async (fd, buf, offset, length, position) => (await readAsync(fd, buf, offset, length, position)).bytesRead,
  fstat: async (fd) => {
    const s = await fstatAsync(fd);
    return { size: s.size, nlink: s.nlink };
  },
  stat: (path) => stat(path).then((s) => ({ dev: s.dev, ino: s.ino }), () => undefined),
};

/** Reads up to `length` bytes at `position` through `io` (short only at end of file). */
export async function readFully(io: TailIo, fd: number, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = await io.read(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

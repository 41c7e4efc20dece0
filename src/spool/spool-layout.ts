import { open, readdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCode, McError } from '../errors.js';
import { readDelivered } from './delivered-file.js';
import { isErrno } from './durable-fs.js';
import { parseSegmentFileName, segmentFileName } from './segment-format.js';
import { scanSegment } from './segment-scan.js';
import type { SegmentScan } from './segment-scan.js';
import type { DeliveredPosition } from './spool-types.js';

/**
 * A spool directory as found on disk, read without changing anything and without the writer's lock:
 * what recovery repairs (recovery-plan.ts), what `Spool.inspect` and `spool list` report. Safe beside
 * a running aggregator: a segment it deletes meanwhile is left out.
 */

export interface SegmentFile {
  readonly number: number;
  /** File size when it was walked. */
  readonly size: number;
  /** Last modification (the last append), ms since the epoch. */
  readonly mtimeMs: number;
  /** Its records; undefined for segments wholly before the delivered one unless asked (`walkDelivered`). */
  readonly scan?: SegmentScan;
}

export interface SpoolLayout {
  readonly dir: string;
  /** Every segment file, ascending. */
  readonly segments: readonly SegmentFile[];
  /** The persisted delivered position (the start when missing or unreadable). */
  readonly delivered: DeliveredPosition;
  /** Why the persisted position (`delivered.pos`, or the earlier `delivered.json`) could not be used, if it could not. */
  readonly deliveredProblem?: string;
}

/** Segment numbers found in `dir`, ascending. McError(Config) when `dir` does not exist. */
export async function segmentNumbers(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new McError(ErrorCode.Config, `no spool directory at ${dir}`);
    throw err;
  }
  return names
    .map(parseSegmentFileName)
    .filter((n): n is number => n !== undefined)
    .sort((a, b) => a - b);
}

/**
 * Walks the segments of `dir`. A torn tail can only be in the segments written last: the last two are
 * verified by checksum; older ones are walked by header (readers verify them as they read). Segments
 * wholly before the delivered one are walked only with `walkDelivered` (recovery does not need their
 * records; a listing does).
 */
export async function readSpoolLayout(dir: string, options: { walkDelivered?: boolean } = {}): Promise<SpoolLayout> {
  const abs = resolve(dir);
  const numbers = await segmentNumbers(abs);
  const read = await readDelivered(abs);
  const delivered = read.position;
  const segments: SegmentFile[] = [];
  for (let i = 0; i < numbers.length; i++) {
    const n = numbers[i] as number;
    let fh: FileHandle;
    try {
      fh = await open(join(abs, segmentFileName(n)), 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue; // deleted by a running aggregator meanwhile
      throw err;
    }
    try {
      const { size, mtimeMs } = await fh.stat();
      if (n < delivered.segment && options.walkDelivered !== true) segments.push({ number: n, size, mtimeMs });
      else segments.push({ number: n, size, mtimeMs, scan: await scanSegment(fh, n, size, i >= numbers.length - 2) });
    } finally {
      await fh.close();
    }
  }
  return read.problem === undefined ? { dir: abs, segments, delivered } : { dir: abs, segments, delivered, deliveredProblem: read.problem };
}

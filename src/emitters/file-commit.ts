import { open, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { crc32c } from '@node-rs/crc32';
import * as z from 'zod';
import { replaceFileAtomic } from '../util/atomic-file.js';
import type { Entry } from '../wire/entry-batch.js';
import { IdentityRanges, nextOffset } from '../wire/entry-identity.js';

/**
 * Exactly-once into the file emitter's output, across kill -9 of the aggregator.
 *
 * The file emitter confirms a batch only after it has *committed* it: the output file's identity
 * (device, inode), its size after the batch, and the identities (collector_id, file_id, offset
 * ranges, see src/wire/entry-identity.ts) of every entry in the output, written together in one
 * atomic replace of the commit file (tmp + rename; with `fsync` also fsynced, and the directory).
 * The spool's delivered position moves after the confirmation, so a crash leaves one of:
 *
 * - bytes written to the output but not committed (killed between the write and the commit): on
 *   start the output is cut back to the committed size, and the batch comes again from the spool;
 * - a batch committed but the delivered position not yet persisted (it is persisted at most every
 *   200 ms): the spool delivers it again, and every entry whose identity is committed is dropped
 *   instead of being appended a second time.
 *
 * The same identity check drops entries that reached the spool twice (a chunk resent by a restarted
 * collector whose ranges the aggregator had forgotten). Bounded: `maxFiles` (collector, file) pairs,
 * the least recently written forgotten first (only their replays could pass again).
 */
export interface CommittedOutput {
  readonly path: string;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: number;
  /**
   * crc32c of the `tailBytes` bytes before `size`: a file at the path with the same inode number but
   * other content (deleted and recreated: inode numbers are reused at once) is not cut.
   */
  readonly tailCrc: number;
  readonly tailBytes: number;
}

/** Bytes of the output's end whose checksum identifies it (the end of the last batch). */
export const TAIL_BYTES = 256;

/** The checksum evidence of an output whose last bytes are `data`'s end. */
export function tailEvidence(data: Buffer): { tailCrc: number; tailBytes: number } {
  const tail = data.subarray(Math.max(0, data.length - TAIL_BYTES));
  return { tailCrc: crc32c(tail), tailBytes: tail.length };
}

const rangeSchema = z.object({ lo: z.number().int().nonnegative(), hi: z.number().int().nonnegative(), next: z.number().int().nonnegative() });
const commitSchema = z.object({
  version: z.literal(1),
  output: z
    .object({
      path: z.string(),
      dev: z.string().regex(/^\d+$/),
      ino: z.string().regex(/^\d+$/),
      size: z.number().int().nonnegative(),
      tail_crc: z.number().int().nonnegative(),
      tail_bytes: z.number().int().nonnegative(),
    })
    .nullable(),
  files: z.array(z.tuple([z.string(), z.string(), z.array(rangeSchema)])),
});

export const DEFAULT_COMMIT_MAX_FILES = 4096;

interface Log {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class FileCommit {
  private ranges: IdentityRanges;
  private output: CommittedOutput | undefined;
  private recovered = false;

  private constructor(
    readonly path: string,
    private readonly maxFiles: number,
    private readonly log: Log | undefined,
  ) {
    this.ranges = new IdentityRanges(maxFiles);
  }

  /**
   * Reads the commit file at `path` (missing: nothing committed yet). An unreadable one is logged and
   * treated as missing: delivering again (at-least-once) is better than refusing to start.
   */
  static async load(path: string, options: { maxFiles?: number; logger?: Log } = {}): Promise<FileCommit> {
    const commit = new FileCommit(path, options.maxFiles ?? DEFAULT_COMMIT_MAX_FILES, options.logger);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return commit;
      throw err;
    }
    let parsed;
    try {
      parsed = commitSchema.parse(JSON.parse(text));
    } catch (err) {
      options.logger?.error({ path, err: String(err) }, 'file emitter: unreadable commit file; starting without it (at-least-once for what is in the output)');
      return commit;
    }
    if (parsed.output !== null) {
      const o = parsed.output;
      commit.output = { path: o.path, dev: BigInt(o.dev), ino: BigInt(o.ino), size: o.size, tailCrc: o.tail_crc, tailBytes: o.tail_bytes };
    }
    for (const [collectorId, fileId, rs] of parsed.files) for (const r of rs) commit.ranges.add(collectorId, fileId, r.lo, r.hi, r.next);
    return commit;
  }

  /** The output as last committed. */
  get committed(): CommittedOutput | undefined {
    return this.output;
  }

  /**
   * Once, before the first write: cuts the committed output file back to its committed size (the
   * bytes after it were written but never confirmed). Only the very file committed (same device and
   * inode at the committed path, and the same checksum of the bytes before the committed size) is
   * cut; a file replaced meanwhile is left alone. Returns
   * the bytes cut.
   */
  async recoverOutput(): Promise<number> {
    if (this.recovered) return 0;
    this.recovered = true;
    const out = this.output;
    if (out === undefined) return 0;
    let fh: FileHandle;
    try {
      fh = await open(out.path, 'r+');
    } catch {
      return 0; // moved or removed: nothing of ours to cut at that path
    }
    try {
      const st = await fh.stat({ bigint: true });
      if (st.dev !== out.dev || st.ino !== out.ino || st.size <= BigInt(out.size) || out.tailBytes > out.size) return 0;
      const tail = Buffer.alloc(out.tailBytes);
      const { bytesRead } = await fh.read(tail, 0, tail.length, out.size - out.tailBytes);
      if (bytesRead !== tail.length || crc32c(tail) !== out.tailCrc) {
        this.log?.warn({ path: out.path }, 'file emitter: the file at the committed path is not the committed output (recreated); not cutting it');
        return 0;
      }
      const cut = Number(st.size) - out.size;
      await fh.truncate(out.size);
      await fh.datasync();
      this.log?.warn({ path: out.path, committedBytes: out.size, cutBytes: cut }, 'file emitter: cut the output back to its last committed size (bytes written but never confirmed before a crash)');
      return cut;
    } finally {
      await fh.close();
    }
  }

  /**
   * The entries whose identity is not committed yet, in order, each once: an entry whose identity came
   * earlier in the same batch is dropped too (two copies of a chunk in the spool, next to each other,
   * would otherwise pass together, as neither is committed yet). `dropped` counts the others.
   */
  unseen(entries: readonly Entry[]): { entries: readonly Entry[]; dropped: number } {
    let dropped = 0;
    let kept: Entry[] | undefined;
    const batch = new IdentityRanges(this.maxFiles);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      const { collectorId, fileId } = e.source;
      const seen = this.ranges.get(collectorId, fileId)?.has(e.offset) === true || batch.get(collectorId, fileId)?.has(e.offset) === true;
      if (seen) {
        dropped++;
        kept ??= entries.slice(0, i) as Entry[];
        continue;
      }
      kept?.push(e);
      batch.add(collectorId, fileId, e.offset, e.offset, nextOffset(e.offset, e.line.length, e.flags));
    }
    return { entries: kept ?? entries, dropped };
  }

  /**
   * Commits `entries` as written into `output` (its size now includes them): atomically replaces the
   * commit file; with `fsync`, durably. On failure nothing changes in memory either, and the caller
   * takes the batch back out of the output.
   */
  async commit(entries: readonly Entry[], output: CommittedOutput, fsync: boolean): Promise<void> {
    const next = new IdentityRanges(this.maxFiles);
    for (const [c, f, rs] of this.ranges.toJSON()) for (const r of rs) next.add(c, f, r.lo, r.hi, r.next);
    addRuns(next, entries);
    const doc = {
      version: 1,
      output: {
        path: output.path,
        dev: output.dev.toString(),
        ino: output.ino.toString(),
        size: output.size,
        tail_crc: output.tailCrc,
        tail_bytes: output.tailBytes,
      },
      files: next.toJSON(),
    };
    await replaceFileAtomic(this.path, `${JSON.stringify(doc)}\n`, fsync);
    this.ranges = next;
    this.output = output;
  }
}

/** Adds the entries' identities, one range per run of consecutive entries of one file. */
function addRuns(ranges: IdentityRanges, entries: readonly Entry[]): void {
  let i = 0;
  while (i < entries.length) {
    const first = entries[i] as Entry;
    let last = first;
    let j = i + 1;
    while (j < entries.length) {
      const e = entries[j] as Entry;
      if (e.offset <= last.offset) break;
      // One FileRun of a record (decodeEntries shares its source object) holds consecutive lines of its
      // file; across records only an entry starting exactly where the last one's successor starts
      // continues the range (a gap between records may hold a chunk that is still to come).
      const sameRun = e.source === last.source;
      if (!sameRun && !(e.source.collectorId === last.source.collectorId && e.source.fileId === last.source.fileId && e.offset === nextOffset(last.offset, last.line.length, last.flags))) break;
      last = e;
      j++;
    }
    ranges.add(first.source.collectorId, first.source.fileId, first.offset, last.offset, nextOffset(last.offset, last.line.length, last.flags));
    i = j;
  }
}


import { open, readFile, rename, unlink, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import * as z from 'zod';
import { ErrorCode, McError, errorMessage } from '../errors.js';

/** One file generation's checkpoint, as stored (validated with zod when loaded). */
export const checkpointRecordSchema = z.object({
  fileId: z.string().min(1),
  path: z.string(),
  dev: z.number().int().nonnegative(),
  ino: z.number().int().nonnegative(),
  fpLength: z.number().int().nonnegative(),
  fpCrc: z.number().int().nonnegative(),
  /** Contiguous acknowledged prefix of the file. */
  offset: z.number().int().nonnegative(),
  /** crc32c of the `hashLength` bytes before `offset`, to detect truncation while stopped. */
  hash: z.number().int().nonnegative(),
  hashLength: z.number().int().nonnegative(),
  /** crc32c of the first `prefixLength` bytes (min(offset, 64 MiB)); absent in older checkpoints. */
  prefixLength: z.number().int().nonnegative().optional(),
  prefixCrc: z.number().int().nonnegative().optional(),
  /** Not tailed when written (rotated away, deleted, truncated): matched by content only. */
  retired: z.boolean(),
  /** Unlinked when finished: its inode may belong to a new file now (never resumed by inode). */
  gone: z.boolean().optional(),
  /** Ended by a truncation: a copy of it (copytruncate) continues it. */
  truncated: z.boolean().optional(),
});
export type CheckpointRecord = z.infer<typeof checkpointRecordSchema>;

const documentSchema = z.object({
  version: z.literal(1),
  crc: z.number().int().nonnegative(),
  records: z.array(z.unknown()),
});

export interface LoadedCheckpoints {
  readonly records: readonly CheckpointRecord[];
  /** Set when the checkpoint file was corrupt or unreadable: say so loudly, start over safely. */
  readonly problem?: string;
  /** Which file the records came from. */
  readonly source: 'main' | 'prev' | 'none';
}

const FILE = 'checkpoints.json';

/**
 * Per-file checkpoints in one JSON document in the state dir, written atomically: temp file, fsync,
 * the current file renamed to `.prev`, the temp renamed in, directory fsynced. A checksum over the
 * records catches a torn or edited file. Loading falls back to `.prev` (older offsets: duplicates,
 * never loss); when neither is usable the problem is reported and the caller starts every file from
 * the beginning (again duplicates rather than loss), so a bad file never causes a crash loop.
 */
export class CheckpointStore {
  readonly file: string;
  private readonly prev: string;
  private readonly tmp: string;
  writes = 0;

  constructor(private readonly dir: string) {
    this.file = join(dir, FILE);
    this.prev = join(dir, `${FILE}.prev`);
    this.tmp = join(dir, `${FILE}.tmp`);
  }

  async load(): Promise<LoadedCheckpoints> {
    await mkdir(this.dir, { recursive: true });
    const main = await this.parse(this.file);
    if (main.records !== undefined) return { records: main.records, source: 'main' };
    const prev = await this.parse(this.prev);
    if (prev.records !== undefined) {
      if (main.problem === undefined) return { records: prev.records, source: 'prev' };
      // Out of the way now: the next save would otherwise rename the bad file onto the good `.prev`,
      // and a crash before that save's last rename would leave nothing usable to restart from.
      await rename(this.file, `${this.file}.corrupt-${Date.now()}`).catch(() => undefined);
      return { records: prev.records, source: 'prev', problem: main.problem };
    }
    const problem = main.problem ?? prev.problem;
    if (problem !== undefined) {
      // Keep the bad file for a post-mortem, out of the way of the next write.
      await rename(this.file, `${this.file}.corrupt-${Date.now()}`).catch(() => undefined);
      return { records: [], source: 'none', problem };
    }
    return { records: [], source: 'none' };
  }

  private async parse(path: string): Promise<{ records?: CheckpointRecord[]; problem?: string }> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      return { problem: `cannot read ${path}: ${errorMessage(err)}` };
    }
    try {
      const doc = documentSchema.parse(JSON.parse(text));
      const recordsText = JSON.stringify(doc.records);
      if (crc32c(recordsText) !== doc.crc) return { problem: `${path}: checksum mismatch` };
      return { records: doc.records.map((r) => checkpointRecordSchema.parse(r)) };
    } catch (err) {
      return { problem: `${path}: ${errorMessage(err)}` };
    }
  }

  /** Writes all records atomically (durable when it resolves). */
  async save(records: readonly CheckpointRecord[]): Promise<void> {
    const recordsText = JSON.stringify(records);
    const text = `{"version":1,"crc":${crc32c(recordsText)},"records":${recordsText}}\n`;
    try {
      const fh = await open(this.tmp, 'w');
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(this.file, this.prev).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      });
      await rename(this.tmp, this.file);
      const dir = await open(this.dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      this.writes++;
    } catch (err) {
      await unlink(this.tmp).catch(() => undefined);
      throw new McError(ErrorCode.Checkpoint, `cannot write checkpoints in ${this.dir}: ${errorMessage(err)}`, { cause: err });
    }
  }
}

import { crc32c } from '@node-rs/crc32';
import { open, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno, writeFileAtomic } from './durable-fs.js';

/**
 * The persisted delivered position: `delivered.pos`, one preallocated file of two slots, each a
 * checksummed copy of the position with a sequence number. A new position is written (pwrite) into
 * the slot the newest copy is not in and fdatasync'ed: two syscalls, no rename, no directory fsync,
 * no size change (so no journal commit that would stall the spool's own fdatasyncs). A write torn by
 * a crash spoils only its own slot, whose checksum then fails: the other slot, one position older,
 * wins (an older delivered position only means emitting some entries again). The file is created
 * whole (temp file, fsync, rename, directory fsync) the first time, so it never exists without one
 * valid slot. `delivered.json` (the earlier format, replaced atomically) is still read when there is
 * no `delivered.pos`, so a spool carries its position over an upgrade.
 *
 *   slot (40 bytes, at 0 and at 512: separate sectors) = crc32c u32 LE of bytes 4..40 | magic "MCDP"
 *        | sequence u64 LE | segment u64 LE | offset u64 LE | entry u32 LE
 */
export const DELIVERED_FILE = 'delivered.pos';
/** The earlier format: JSON `{segment, offset, entry}`, read only. */
export const LEGACY_DELIVERED_FILE = 'delivered.json';

const SLOT_BYTES = 40;
const SLOT_STRIDE = 512;
const FILE_BYTES = 2 * SLOT_STRIDE;
const SLOT_MAGIC = 0x5044434d; // "MCDP" read as u32 LE

/** Everything before `offset` in `segment`, plus the first `entry` entries of the record at it, is delivered. */
export interface StoredPosition {
  readonly segment: number;
  readonly offset: number;
  readonly entry: number;
}

export const START: StoredPosition = Object.freeze({ segment: 0, offset: 0, entry: 0 });

/** Orders positions: negative when a is before b. */
export function comparePositions(a: StoredPosition, b: StoredPosition): number {
  return a.segment - b.segment || a.offset - b.offset || a.entry - b.entry;
}

function valid(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** One slot's bytes for `p`, written with `sequence`. */
export function encodeSlot(p: StoredPosition, sequence: number): Buffer {
  const b = Buffer.alloc(SLOT_BYTES);
  b.writeUInt32LE(SLOT_MAGIC, 4);
  b.writeBigUInt64LE(BigInt(sequence), 8);
  b.writeBigUInt64LE(BigInt(p.segment), 16);
  b.writeBigUInt64LE(BigInt(p.offset), 24);
  b.writeUInt32LE(p.entry, 32);
  b.writeUInt32LE(crc32c(b.subarray(4)), 0);
  return b;
}

/** Where the slot written with `sequence` lies: the two slots take turns. */
function slotOffset(sequence: number): number {
  return (sequence % 2) * SLOT_STRIDE;
}

/** The slot's position and sequence, or undefined when it is torn, empty or not a slot. */
export function decodeSlot(b: Buffer): { position: StoredPosition; sequence: number } | undefined {
  if (b.length < SLOT_BYTES || b.readUInt32LE(4) !== SLOT_MAGIC || crc32c(b.subarray(4, SLOT_BYTES)) !== b.readUInt32LE(0)) return undefined;
  const sequence = Number(b.readBigUInt64LE(8));
  const position = { segment: Number(b.readBigUInt64LE(16)), offset: Number(b.readBigUInt64LE(24)), entry: b.readUInt32LE(32) };
  if (!valid(sequence) || !valid(position.segment) || !valid(position.offset)) return undefined;
  return { position, sequence };
}

/** The newest valid slot of a `delivered.pos` file's bytes, or undefined when neither is valid. */
export function newestSlot(file: Buffer): { position: StoredPosition; sequence: number } | undefined {
  const a = decodeSlot(file.subarray(0, SLOT_BYTES));
  const b = decodeSlot(file.subarray(SLOT_STRIDE, SLOT_STRIDE + SLOT_BYTES));
  if (a === undefined || b === undefined) return a ?? b;
  return b.sequence > a.sequence ? b : a;
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/**
 * Reads the persisted delivered position. Missing: the start. Unreadable: the start as well (or the
 * earlier format's position, when that file is still there), with `problem` set, because delivering
 * again (at-least-once) is better than refusing to start.
 */
export async function readDelivered(dir: string): Promise<{ position: StoredPosition; problem?: string }> {
  const slots = await readIfExists(join(dir, DELIVERED_FILE));
  let problem: string | undefined;
  if (slots !== undefined) {
    const newest = newestSlot(slots);
    if (newest !== undefined) return { position: newest.position };
    problem = `${DELIVERED_FILE} holds no valid position (${slots.length} bytes)`;
  }
  const legacy = await readLegacy(dir);
  if (problem === undefined) return legacy;
  return { position: legacy.position, problem: legacy.problem === undefined ? problem : `${problem}; ${legacy.problem}` };
}

async function readLegacy(dir: string): Promise<{ position: StoredPosition; problem?: string }> {
  const bytes = await readIfExists(join(dir, LEGACY_DELIVERED_FILE));
  if (bytes === undefined) return { position: START };
  const text = bytes.toString('utf8');
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (valid(v.segment) && valid(v.offset) && valid(v.entry)) {
      return { position: { segment: v.segment, offset: v.offset, entry: v.entry } };
    }
  } catch {
    // fall through
  }
  return { position: START, problem: `${LEGACY_DELIVERED_FILE} is not a valid position: ${JSON.stringify(text.slice(0, 200))}` };
}

/** Writes positions into `delivered.pos` (see the top of this file). One writer per spool directory. */
export class DeliveredSlots {
  private constructor(
    private readonly fh: FileHandle,
    private sequence: number,
  ) {}

  /**
   * Opens the file for writing, continuing its sequence; when it is missing or holds no valid slot,
   * first creates it whole, holding `initial`.
   */
  static async open(dir: string, initial: StoredPosition): Promise<DeliveredSlots> {
    const path = join(dir, DELIVERED_FILE);
    const existing = await readIfExists(path);
    let newest = existing === undefined || existing.length !== FILE_BYTES ? undefined : newestSlot(existing);
    if (newest === undefined) {
      const file = Buffer.alloc(FILE_BYTES);
      encodeSlot(initial, 1).copy(file, slotOffset(1));
      await writeFileAtomic(path, file);
      newest = { position: initial, sequence: 1 };
    }
    return new DeliveredSlots(await open(path, 'r+'), newest.sequence);
  }

  /** Persists `p` durably (pwrite into the older slot, fdatasync). */
  async write(p: StoredPosition): Promise<void> {
    const sequence = this.sequence + 1;
    const slot = encodeSlot(p, sequence);
    const at = slotOffset(sequence);
    let written = 0;
    while (written < SLOT_BYTES) written += (await this.fh.write(slot, written, SLOT_BYTES - written, at + written)).bytesWritten;
    await this.fh.datasync();
    this.sequence = sequence;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno, writeFileAtomic } from './durable-fs.js';

export const DELIVERED_FILE = 'delivered.json';

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

/**
 * Reads the persisted delivered position. Missing: the start. Unreadable: the start as well, with
 * `problem` set, because delivering again (at-least-once) is better than refusing to start.
 */
export async function readDelivered(dir: string): Promise<{ position: StoredPosition; problem?: string }> {
  let text: string;
  try {
    text = await readFile(join(dir, DELIVERED_FILE), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { position: START };
    throw err;
  }
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (valid(v.segment) && valid(v.offset) && valid(v.entry)) {
      return { position: { segment: v.segment, offset: v.offset, entry: v.entry } };
    }
  } catch {
    // fall through
  }
  return { position: START, problem: `${DELIVERED_FILE} is not a valid position: ${JSON.stringify(text.slice(0, 200))}` };
}

export async function writeDelivered(dir: string, p: StoredPosition): Promise<void> {
  const text = JSON.stringify({ segment: p.segment, offset: p.offset, entry: p.entry }) + '\n';
  await writeFileAtomic(join(dir, DELIVERED_FILE), text);
}

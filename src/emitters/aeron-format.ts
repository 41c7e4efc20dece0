import type { AeronDataFormat } from '../config/aeron-config.js';
import type { Entry } from '../wire/entry-batch.js';
import type { Batch } from './emitter.js';
import { entryToJson } from './entry-json.js';

export interface FormattedBatch {
  /** The messages to offer, in order (no per-message objects: this is the hot path). */
  readonly messages: readonly Buffer[];
  /** json_batch only: the entry indices each message carries. */
  readonly carried?: readonly (readonly number[])[];
  /** Entries whose message alone exceeds the maximum size. */
  readonly rejected: readonly number[];
}

/**
 * Batch → Aeron messages. raw: the line's bytes exactly, read through `batch.lines()` (views into the
 * batch's records: no entry objects, no copies); json: one entry document per message; json_batch:
 * one array per batch, split in halves when it exceeds `maxMessageSize` so only an entry that cannot
 * fit even alone is rejected.
 */
export function formatBatch(batch: Batch, format: AeronDataFormat, maxMessageSize: number): FormattedBatch {
  const messages: Buffer[] = [];
  const rejected: number[] = [];
  if (format === 'raw') {
    let i = 0;
    for (const line of batch.lines()) {
      if (line.length > maxMessageSize) rejected.push(i);
      else messages.push(line);
      i++;
    }
    return { messages, rejected };
  }
  const entries = batch.entries();
  if (format === 'json_batch') {
    const carried: number[][] = [];
    const all = entries.map((_, i) => i);
    if (all.length > 0) splitJsonBatch(entries, all, maxMessageSize, messages, carried, rejected);
    return { messages, carried, rejected };
  }
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry;
    const bytes = Buffer.from(JSON.stringify(entryToJson(e)), 'utf8');
    if (bytes.length > maxMessageSize) rejected.push(i);
    else messages.push(bytes);
  }
  return { messages, rejected };
}

function splitJsonBatch(entries: readonly Entry[], indices: number[], max: number, out: Buffer[], carried: number[][], rejected: number[]): void {
  const bytes = Buffer.from(JSON.stringify(indices.map((i) => entryToJson(entries[i] as Entry))), 'utf8');
  if (bytes.length <= max) {
    out.push(bytes);
    carried.push(indices);
    return;
  }
  if (indices.length === 1) {
    rejected.push(indices[0] as number);
    return;
  }
  const half = Math.ceil(indices.length / 2);
  splitJsonBatch(entries, indices.slice(0, half), max, out, carried, rejected);
  splitJsonBatch(entries, indices.slice(half), max, out, carried, rejected);
}

import type { AeronDataFormat } from '../config/aeron-config.js';
import type { Entry } from '../wire/entry-batch.js';
import { entryToJson } from './entry-json.js';

/** One Aeron message and the batch entries it carries. */
export interface AeronMessage {
  readonly bytes: Buffer;
  /** Indices into the batch's entries. */
  readonly entries: readonly number[];
}

export interface FormattedBatch {
  readonly messages: readonly AeronMessage[];
  /** Entries whose message alone exceeds the maximum size. */
  readonly rejected: readonly number[];
}

/**
 * Batch → Aeron messages. raw: the line's bytes exactly (a view, no copy); json: one entry document
 * per message; json_batch: one array per batch, split in halves when it exceeds `maxMessageSize` so
 * only an entry that cannot fit even alone is rejected.
 */
export function formatBatch(entries: readonly Entry[], format: AeronDataFormat, maxMessageSize: number): FormattedBatch {
  const messages: AeronMessage[] = [];
  const rejected: number[] = [];
  if (format === 'json_batch') {
    const all = entries.map((_, i) => i);
    if (all.length > 0) splitJsonBatch(entries, all, maxMessageSize, messages, rejected);
    return { messages, rejected };
  }
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as Entry;
    const bytes = format === 'raw' ? e.line : Buffer.from(JSON.stringify(entryToJson(e)), 'utf8');
    if (bytes.length > maxMessageSize) rejected.push(i);
    else messages.push({ bytes, entries: [i] });
  }
  return { messages, rejected };
}

function splitJsonBatch(entries: readonly Entry[], indices: number[], max: number, out: AeronMessage[], rejected: number[]): void {
  const bytes = Buffer.from(JSON.stringify(indices.map((i) => entryToJson(entries[i] as Entry))), 'utf8');
  if (bytes.length <= max) {
    out.push({ bytes, entries: indices });
    return;
  }
  if (indices.length === 1) {
    rejected.push(indices[0] as number);
    return;
  }
  const half = Math.ceil(indices.length / 2);
  splitJsonBatch(entries, indices.slice(0, half), max, out, rejected);
  splitJsonBatch(entries, indices.slice(half), max, out, rejected);
}

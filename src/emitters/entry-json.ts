import { isUtf8 } from 'node:buffer';
import type { Entry } from '../wire/entry-batch.js';

/**
 * The JSON shape of one entry, shared by the file, text and Aeron emitters so every JSON consumer sees
 * the same document. Lines that are valid UTF-8 travel as `line`; others as `line_base64`, so no byte is
 * lost or replaced. The identity fields (collector_id, file_id, offset) let consumers drop replays.
 */
export interface EntryJson {
  readonly timestamp: string;
  readonly time_unix_nano: string;
  readonly source: {
    readonly collector_id: string;
    readonly path: string;
    readonly file_id: string;
    readonly offset: number;
  };
  readonly tags: Readonly<Record<string, string>>;
  readonly flags?: number;
  readonly line?: string;
  readonly line_base64?: string;
}

const tagObjects = new WeakMap<readonly unknown[], Readonly<Record<string, string>>>();

function tagsObject(entry: Entry): Readonly<Record<string, string>> {
  // Entries of one decoded batch share their tags array: build the object once per batch, not per line.
  let obj = tagObjects.get(entry.tags);
  if (obj === undefined) {
    const o: Record<string, string> = {};
    for (const t of entry.tags) o[t.key] = t.value;
    obj = Object.freeze(o);
    tagObjects.set(entry.tags, obj);
  }
  return obj;
}

/** RFC 3339 with nanoseconds, from the entry's time_unix_nano. */
export function formatTimestamp(timeUnixNano: bigint): string {
  const ms = Number(timeUnixNano / 1_000_000n);
  const iso = new Date(ms).toISOString(); // 2024-01-02T03:04:05.678Z
  const nanos = (timeUnixNano % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${nanos}Z`;
}

export function entryToJson(entry: Entry): EntryJson {
  const base = {
    timestamp: formatTimestamp(entry.timeUnixNano),
    time_unix_nano: entry.timeUnixNano.toString(),
    source: {
      collector_id: entry.source.collectorId,
      path: entry.source.path,
      file_id: entry.source.fileId,
      offset: entry.offset,
    },
    tags: tagsObject(entry),
    ...(entry.flags !== 0 ? { flags: entry.flags } : {}),
  };
  return isUtf8(entry.line)
    ? { ...base, line: entry.line.toString('utf8') }
    : { ...base, line_base64: entry.line.toString('base64') };
}

/** One JSON document per entry, newline-terminated, as one buffer (few large writes downstream). */
export function entriesToJsonLines(entries: readonly Entry[]): Buffer {
  let text = '';
  for (const e of entries) text += `${JSON.stringify(entryToJson(e))}\n`;
  return Buffer.from(text, 'utf8');
}

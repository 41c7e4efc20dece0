import { existsSync, readFileSync } from 'node:fs';

/**
 * Reads the aggregator's JSON file-emitter output and checks it against what a test wrote: every line
 * exactly once (or, after crashes, at least once with duplicates only as replays of the same entry
 * identity), and each file's entries in offset order.
 */
export interface Delivered {
  readonly line: string;
  readonly fileId: string;
  readonly offset: number;
  readonly path: string;
}

export function readDelivered(path: string): Delivered[] {
  if (!existsSync(path)) return [];
  const out: Delivered[] = [];
  const text = readFileSync(path, 'utf8');
  for (const l of text.split('\n')) {
    if (l === '') continue;
    let r: { line: string; source: { file_id: string; offset: number | string; path: string } };
    try {
      r = JSON.parse(l) as typeof r;
    } catch {
      continue; // a record still being written
    }
    out.push({ line: r.line, fileId: r.source.file_id, offset: Number(r.source.offset), path: r.source.path });
  }
  return out;
}

export interface DeliveryReport {
  readonly expected: number;
  readonly delivered: number;
  readonly missing: string[];
  /** Lines delivered more than once (extra copies counted). */
  readonly duplicates: number;
  /** Duplicates whose copies do not share one identity (file id + offset): a real bug, never a replay. */
  readonly foreignDuplicates: string[];
  /** Lines that are not among those written. */
  readonly unexpected: string[];
  /** A file's entries out of offset order, outside replays. */
  readonly orderViolations: string[];
}

export function checkDelivery(written: readonly string[], delivered: readonly Delivered[]): DeliveryReport {
  const want = new Set(written);
  const seen = new Map<string, Delivered>();
  let duplicates = 0;
  const foreignDuplicates: string[] = [];
  const unexpected: string[] = [];
  const orderViolations: string[] = [];
  const lastOffset = new Map<string, number>();
  for (const d of delivered) {
    if (!want.has(d.line)) unexpected.push(d.line);
    const prev = seen.get(d.line);
    if (prev !== undefined) {
      duplicates++;
      if (prev.fileId !== d.fileId || prev.offset !== d.offset) foreignDuplicates.push(d.line);
      continue; // a replay may go back in offsets: order is judged on first deliveries
    }
    seen.set(d.line, d);
    const last = lastOffset.get(d.fileId);
    if (last !== undefined && d.offset <= last) orderViolations.push(`${d.fileId}: ${d.offset} after ${last}`);
    lastOffset.set(d.fileId, d.offset);
  }
  const missing = written.filter((w) => !seen.has(w));
  return { expected: written.length, delivered: delivered.length, missing, duplicates, foreignDuplicates, unexpected, orderViolations };
}


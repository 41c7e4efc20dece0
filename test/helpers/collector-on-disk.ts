import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/**
 * What the log files in a directory hold at the end of a test (rotated copies included, gzip ones
 * decompressed): a line written but in no file was lost by whoever removed it (logrotate's own
 * copy-then-truncate window, a truncation before the line was read), not by the collector.
 */
export function linesOnDisk(dir: string): Set<string> {
  const out = new Set<string>();
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    let data = readFileSync(path);
    if (name.endsWith('.gz')) data = gunzipSync(data);
    for (const l of data.toString('utf8').split('\n')) if (l !== '') out.add(l);
  }
  return out;
}

/** Lines of one fixed length (`<tag>-<seq> <padding>`), unique by sequence number, as one text. */
export function numberedLines(tag: string, from: number, count: number, padding = 100): { lines: string[]; text: string } {
  const lines: string[] = [];
  for (let i = from; i < from + count; i++) lines.push(`${tag}-${String(i).padStart(8, '0')} ${'p'.repeat(padding)}`);
  return { lines, text: `${lines.join('\n')}\n` };
}

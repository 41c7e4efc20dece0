import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readDeadLetterFile } from '../../src/spool/dead-letters.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { runAggregator, startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { readDelivered } from '../helpers/collector-delivery.js';
import type { Delivered } from '../helpers/collector-delivery.js';
import { FAST_COLLECTOR_ENV, runCollector, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { buildEntries, createIngestClient } from '../helpers/ingest-client.js';
import { tryWaitFor, waitFor } from '../helpers/wait-for.js';
import { killAndRemove } from '../helpers/tear-down.js';

/**
 * Issue 8, case 5: a collector and an aggregator with different size limits. The aggregator
 * advertises its limits; the real collector builds nothing it would refuse (long lines become
 * flagged pieces that rejoin exactly), and lines it still meets over its limit are dead letters,
 * never a lost chunk.
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});

interface JsonRecord {
  line: string;
  flags?: number;
  source: { file_id: string; offset: number | string; path: string };
}

/** Reads the JSON output with flags, first deliveries only, and rejoins split lines per file. */
function rejoined(out: string): { lines: Map<string, string[]>; pieces: number; longestPiece: number; duplicates: number } {
  const raw = readDelivered(out);
  // readDelivered drops flags: parse them again from the same file, in the same order.
  const flags = readFlags(out);
  const byFile = new Map<string, Array<Delivered & { flags: number }>>();
  const seen = new Set<string>();
  let duplicates = 0;
  raw.forEach((d, i) => {
    const key = `${d.fileId}@${d.offset}`;
    if (seen.has(key)) {
      duplicates++;
      return;
    }
    seen.add(key);
    const list = byFile.get(d.path) ?? [];
    list.push({ ...d, flags: flags[i] ?? 0 });
    byFile.set(d.path, list);
  });
  const lines = new Map<string, string[]>();
  let pieces = 0;
  let longestPiece = 0;
  for (const [path, entries] of byFile) {
    entries.sort((a, b) => a.offset - b.offset);
    const outLines: string[] = [];
    let open: { text: string; next: number } | undefined;
    for (const e of entries) {
      longestPiece = Math.max(longestPiece, Buffer.byteLength(e.line));
      if (open !== undefined) {
        expect(e.offset, `piece of ${path} at ${e.offset} continues at ${open.next}`).toBe(open.next);
        open.text += e.line;
        open.next += Buffer.byteLength(e.line);
        pieces++;
        if ((e.flags & 1) === 0) {
          expect(e.flags & 2).toBe(2); // PARTIAL_LAST ends a split line
          outLines.push(open.text);
          open = undefined;
        }
      } else if ((e.flags & 1) !== 0) {
        open = { text: e.line, next: e.offset + Buffer.byteLength(e.line) };
        pieces++;
      } else outLines.push(e.line);
    }
    if (open !== undefined) outLines.push(`UNFINISHED:${open.text}`);
    lines.set(path, outLines);
  }
  return { lines, pieces, longestPiece, duplicates };
}

function readFlags(out: string): number[] {
  if (!existsSync(out)) return [];
  const flags: number[] = [];
  for (const l of readFileSync(out, 'utf8').split('\n')) {
    if (l === '') continue;
    try {
      flags.push((JSON.parse(l) as JsonRecord).flags ?? 0);
    } catch {
      // a record still being written (readDelivered skips it too)
    }
  }
  return flags;
}

/** Numbered lines; every 97th is long (3-9 KiB), all unique. */
function makeLines(tag: string, from: number, n: number): string[] {
  const out: string[] = [];
  for (let i = from; i < from + n; i++) {
    if (i % 97 === 0) {
      const len = 3000 + ((i * 7919) % 6000);
      const head = `${tag} ${i} LONG `;
      out.push(head + 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(len / 36)).slice(0, len - head.length));
    } else out.push(`${tag} ${i} ${'s'.repeat(40)}`);
  }
  return out;
}

describe('mismatched size limits between a real collector and a real aggregator', () => {
  it('a 64 MiB collector buffer against a 256 KiB / 2 KiB / 500-entry aggregator: lost 0, long lines split and rejoinable, nothing refused', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-limits-'));
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    const out = join(dir, 'out.jsonl');
    aggregator = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms',
        AGGREGATOR_MAX_CHUNK_BYTES: '256KiB',
        AGGREGATOR_MAX_LINE_BYTES: '2KiB',
        AGGREGATOR_MAX_ENTRIES_PER_CHUNK: '500',
      },
    });
    // Written before the collector starts: its first chunks are sealed before it knows the limits
    // (under the conservative ones) and must be re-cut; later ones are built within the limits.
    const before = makeLines('a', 1, 40_000);
    appendFileSync(join(logs, 'a.log'), before.map((l) => `${l}\n`).join(''));
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_REMOTE_ADDRESS: aggregator.address,
      COLLECTOR_FILES: join(logs, '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
      COLLECTOR_BUFFER_MAX_BYTES: '64MiB',
    });
    await collector.waitForLog((r) => r.msg === 'the aggregator advertised its limits');
    const after = makeLines('b', 1, 20_000);
    for (let i = 0; i < after.length; i += 5000) {
      appendFileSync(join(logs, 'b.log'), after.slice(i, i + 5000).map((l) => `${l}\n`).join(''));
      await new Promise((r) => setTimeout(r, 20));
    }
    const total = before.length + after.length;
    const done = await tryWaitFor(() => {
      const r = rejoined(out);
      return (r.lines.get(join(logs, 'a.log'))?.length ?? 0) + (r.lines.get(join(logs, 'b.log'))?.length ?? 0) >= total;
    }, { timeoutMs: 90_000, intervalMs: 500, what: 'every line of a.log and b.log delivered' });
    const r = rejoined(out);
    const a = r.lines.get(join(logs, 'a.log')) ?? [];
    const b = r.lines.get(join(logs, 'b.log')) ?? [];
    const lost = before.filter((l, i) => a[i] !== l).length + after.filter((l, i) => b[i] !== l).length;
    const refused = await aggregator.metric('mega_aggregator_chunks_refused_total');
    const oversized = await aggregator.metric('mega_aggregator_entries_oversized_total');
    const dropped = await collector.metric('mega_collector_lines_dropped_total');
    const recut = collector.logs.filter((l) => l.includes('re-cut to fit')).length;
    console.log(
      `limits: ${total} lines written (${before.filter((l) => l.includes('LONG')).length + after.filter((l) => l.includes('LONG')).length} long), delivered ${a.length + b.length} after rejoining ${r.pieces} pieces ` +
        `(longest piece ${r.longestPiece} B), lost ${lost}, duplicates ${r.duplicates}; chunks refused ${refused}, oversized ${oversized}, collector dropped ${dropped}, chunks re-cut ${recut}`,
    );
    expect(done).toBe(true);
    expect(a).toEqual(before);
    expect(b).toEqual(after);
    expect(lost).toBe(0);
    expect(r.duplicates).toBe(0);
    expect(r.longestPiece).toBeLessThanOrEqual(2048);
    expect(r.pieces).toBeGreaterThan(0);
    expect(refused).toBe(0);
    expect(oversized).toBe(0);
    expect(dropped).toBe(0);
  }, 150_000);

  it('a line over the limit from a client that ignores it is kept as a dead letter; the 20 short lines of its chunk are accepted', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-limits-'));
    const out = join(dir, 'out.jsonl');
    const spool = join(dir, 'spool');
    aggregator = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: spool,
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms',
        AGGREGATOR_MAX_LINE_BYTES: '2KiB',
      },
    });
    const client = createIngestClient(aggregator.address);
    const st = client.open();
    const lines = Array.from({ length: 20 }, (_, i) => ({ data: Buffer.from(`short ${i}`), offset: i * 100 }));
    lines.splice(10, 0, { data: Buffer.alloc(4096, 0x4c), offset: 5000 });
    st.send({ sequence: 1, ...buildEntries(lines) });
    const [ack] = await st.waitForAcks(1);
    expect(ack?.code).toBe('OK');
    await waitFor(() => readDelivered(out).length >= 20, { timeoutMs: 10_000, intervalMs: 100, what: '20 lines delivered' });
    expect(readDelivered(out).map((d) => d.line)).toEqual(Array.from({ length: 20 }, (_, i) => `short ${i}`));
    const letters = await readDeadLetterFile(spool);
    expect(letters.letters).toHaveLength(1);
    expect(letters.letters[0]?.reason).toMatch(/AGGREGATOR_MAX_LINE_BYTES/);
    const dead = decodeEntries(letters.letters[0]?.data as Buffer);
    expect(dead.map((e) => [e.line.length, e.offset])).toEqual([[4096, 5000]]);
    expect(await aggregator.metric('mega_aggregator_entries_oversized_total')).toBe(1);
    expect(await aggregator.metric('mega_aggregator_chunks_refused_total')).toBe(0);
    await st.finish();
    client.close();
  });

  it('contradictory sizes in one program are refused at start with exit 2, naming the variables', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-limits-'));
    const agg = await runAggregator({ AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), AGGREGATOR_MAX_CHUNK_BYTES: '1MiB', AGGREGATOR_MAX_LINE_BYTES: '2MiB' });
    expect(agg.code).toBe(2);
    expect(agg.stderr).toMatch(/AGGREGATOR_MAX_LINE_BYTES: must not exceed AGGREGATOR_MAX_CHUNK_BYTES/);
    const col = await runCollector({
      COLLECTOR_REMOTE_ADDRESS: '127.0.0.1:1',
      COLLECTOR_FILES: join(dir, '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
      COLLECTOR_BUFFER_MAX_BYTES: '64KiB',
      COLLECTOR_MAX_LINE_BYTES: '1MiB',
    });
    expect(col.code).toBe(2);
    expect(col.stderr).toMatch(/COLLECTOR_MAX_LINE_BYTES: must not exceed COLLECTOR_BUFFER_MAX_BYTES/);
  });
});

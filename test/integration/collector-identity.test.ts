import { closeSync, mkdirSync, mkdtempSync, openSync, truncateSync, writeFileSync, writeSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { readDelivered } from '../helpers/collector-delivery.js';
import { linesOnDisk, numberedLines } from '../helpers/collector-on-disk.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { tryWaitFor, waitFor } from '../helpers/wait-for.js';
import { killAndRemove } from '../helpers/tear-down.js';
import { restartablePort } from '../helpers/free-port.js';

/**
 * Issue 8, case 2: a file rewritten in place, or truncated and regrown past the checkpoint, with lines
 * of exactly the same lengths (and the same first lines: a start-up banner), while the collector is
 * stopped or while its reading is paused (the aggregator away, COLLECTOR_MAX_INFLIGHT_BYTES reached).
 * Every line the file holds at the end must be delivered (lost = 0); old lines overwritten before
 * they were read are in no file and counted apart.
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});

/** The same 20 banner lines start every generation: the first KiB never tells generations apart. */
const BANNER = numberedLines('banner', 0, 20).text;

interface Setup {
  readonly logs: string;
  readonly file: string;
  readonly out: string;
  readonly written: Set<string>;
  readonly env: Record<string, string>;
}

function setup(): Setup {
  dir = mkdtempSync(join(tmpdir(), 'mc-ident-'));
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  return {
    logs,
    file: join(logs, 'app.log'),
    out: join(dir, 'out.jsonl'),
    written: new Set(numberedLines('banner', 0, 20).lines),
    env: { ...FAST_COLLECTOR_ENV, COLLECTOR_FILES: join(logs, '*.log'), COLLECTOR_STATE_DIR: join(dir, 'state') },
  };
}

function aggregatorEnv(s: Setup, listen?: string): Record<string, string> {
  return {
    AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
    AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: s.out, format: 'json' }),
    AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms',
    ...(listen === undefined ? {} : { AGGREGATOR_LISTEN_ADDRESS: listen }),
  };
}

function generation(s: Setup, tag: string, count: number): string {
  const g = numberedLines(tag, 0, count);
  for (const l of g.lines) s.written.add(l);
  return BANNER + g.text;
}

/** Waits until every line on disk is delivered; returns lost (on disk, never delivered) and the rest. */
async function settle(s: Setup): Promise<{ lost: string[]; destroyed: number; delivered: number; duplicates: number }> {
  const onDisk = linesOnDisk(s.logs);
  await tryWaitFor(() => {
    const got = new Set(readDelivered(s.out).map((d) => d.line));
    return [...onDisk].every((l) => got.has(l));
  }, { timeoutMs: 30_000, intervalMs: 200, what: 'every line on disk delivered' });
  await new Promise((r) => setTimeout(r, 300));
  const all = readDelivered(s.out);
  const seen = new Set(all.map((d) => d.line));
  const lost = [...onDisk].filter((l) => !seen.has(l));
  const destroyed = [...s.written].filter((l) => !onDisk.has(l) && !seen.has(l)).length;
  return { lost, destroyed, delivered: all.length, duplicates: all.length - seen.size };
}

describe('file identity with equal line layouts', () => {
  it('while stopped: truncated and regrown past the checkpoint, same layout and same first KiB: nothing lost', async () => {
    const s = setup();
    aggregator = await startAggregator({ env: aggregatorEnv(s) });
    writeFileSync(s.file, generation(s, 'gen1', 500));
    collector = await startCollector({ ...s.env, COLLECTOR_REMOTE_ADDRESS: aggregator.address });
    await waitFor(async () => (await collector?.metric('mega_collector_lines_acknowledged_total')) === 520, { timeoutMs: 15_000, intervalMs: 50, what: '520 lines acknowledged' });
    expect(await collector.stop()).toBe(0);
    truncateSync(s.file, 0);
    appendFileSync(s.file, generation(s, 'gen2', 800));
    collector = await startCollector({ ...s.env, COLLECTOR_REMOTE_ADDRESS: aggregator.address });
    const r = await settle(s);
    console.log(`stopped, truncated and regrown: ${s.written.size} distinct lines written, ${r.delivered} delivered, lost ${r.lost.length}, duplicates ${r.duplicates}`);
    expect(r.lost.slice(0, 3)).toEqual([]);
    expect(r.destroyed).toBe(0);
    expect(await collector.metric('mega_collector_truncations_total')).toBe(1);
  });

  it('while stopped: rewritten in place (no truncation) from the 21st line on, same layout: nothing lost', async () => {
    const s = setup();
    aggregator = await startAggregator({ env: aggregatorEnv(s) });
    writeFileSync(s.file, generation(s, 'gen1', 500));
    collector = await startCollector({ ...s.env, COLLECTOR_REMOTE_ADDRESS: aggregator.address });
    await waitFor(async () => (await collector?.metric('mega_collector_lines_acknowledged_total')) === 520, { timeoutMs: 15_000, intervalMs: 50, what: '520 lines acknowledged' });
    expect(await collector.stop()).toBe(0);
    // Overwrites every old line after the banner and goes on past the old end.
    const fd = openSync(s.file, 'r+');
    writeSync(fd, Buffer.from(generation(s, 'gen2', 700).slice(BANNER.length)), 0, undefined, Buffer.byteLength(BANNER));
    closeSync(fd);
    collector = await startCollector({ ...s.env, COLLECTOR_REMOTE_ADDRESS: aggregator.address });
    const r = await settle(s);
    console.log(`stopped, rewritten in place: ${s.written.size} distinct lines written, ${r.delivered} delivered, lost ${r.lost.length}, duplicates ${r.duplicates}`);
    expect(r.lost.slice(0, 3)).toEqual([]);
    expect(await collector.metric('mega_collector_truncations_total')).toBe(1);
  });

  for (const mode of ['truncated and regrown', 'rewritten in place'] as const) {
    it(`while paused waiting for acknowledgements: ${mode} past the read offset, same layout: nothing lost`, async () => {
      const s = setup();
      const port = await restartablePort();
      writeFileSync(s.file, generation(s, 'gen1', 20000));
      collector = await startCollector({ ...s.env, COLLECTOR_REMOTE_ADDRESS: `127.0.0.1:${port}`, COLLECTOR_MAX_INFLIGHT_BYTES: '64KiB', COLLECTOR_BUFFER_MAX_BYTES: '16KiB' });
      await waitFor(async () => (await collector?.metric('mega_collector_reading_paused')) === 1, { timeoutMs: 15_000, intervalMs: 50, what: 'the collector to pause reading' });
      const readBefore = await collector.metric('mega_collector_lines_read_total');
      expect(readBefore).toBeLessThan(20000);
      const text = generation(s, 'gen2', 25000);
      if (mode === 'truncated and regrown') {
        truncateSync(s.file, 0);
        await new Promise((r) => setTimeout(r, 300));
        appendFileSync(s.file, text);
      } else {
        const fd = openSync(s.file, 'r+');
        writeSync(fd, text, 0);
        closeSync(fd);
      }
      await new Promise((r) => setTimeout(r, 500));
      aggregator = await startAggregator({ env: aggregatorEnv(s, `127.0.0.1:${port}`) });
      const r = await settle(s);
      console.log(`paused, ${mode}: ${s.written.size} distinct lines written, ${readBefore} read before, ${r.delivered} delivered, lost ${r.lost.length}, overwritten before being read ${r.destroyed}, duplicates ${r.duplicates}`);
      expect(r.lost.slice(0, 3)).toEqual([]);
      expect(await collector.metric('mega_collector_truncations_total')).toBe(1);
    });
  }
});

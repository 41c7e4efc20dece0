import { execFile } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { generateTestCerts } from '../helpers/certs.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { buildEntries, createIngestClient } from '../helpers/ingest-client.js';
import { startFakeEventsApi } from '../helpers/pagerduty-server.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The aggregator's file output under what operators do to it, with the real aggregator process, real
 * gRPC, real `mv`, `rm -rf` and signals, and uniquely numbered lines: nothing confirmed is anywhere but
 * in the file the path names, so across rotations every line is in exactly one file, and a removed
 * directory holds the batches back (retries, PagerDuty) until it is there again.
 */

const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const lineText = (n: number): string => `line-${String(n).padStart(7, '0')}`;

async function linesOf(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
}


/** What an ordered list of files holds: lost, duplicated and out-of-order lines against 0..total-1. */
function account(files: string[][], total: number): { lost: number; duplicated: number; inOrder: boolean } {
  const seen = new Map<string, number>();
  for (const f of files) for (const l of f) seen.set(l, (seen.get(l) ?? 0) + 1);
  let lost = 0;
  let duplicated = 0;
  for (let n = 0; n < total; n++) {
    const c = seen.get(lineText(n)) ?? 0;
    if (c === 0) lost++;
    else duplicated += c - 1;
  }
  const all = files.flat();
  const inOrder = all.length === total && all.every((l, i) => l === lineText(i));
  return { lost, duplicated, inOrder };
}

/** Ships numbered lines over one real gRPC stream, a chunk every few ms, until stopped. */
function startShipping(address: string, linesPerChunk = 25, everyMs = 5) {
  const client = createIngestClient(address);
  const stream = client.open();
  let sent = 0;
  let chunks = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const lines = Array.from({ length: linesPerChunk }, (_, i) => ({ data: Buffer.from(lineText(sent + i)) }));
      const { entries, entryCount } = buildEntries(lines);
      stream.send({ sequence: chunks++, entries, entryCount });
      sent += linesPerChunk;
      await sleep(everyMs);
    }
  })();
  return {
    get sent(): number {
      return sent;
    },
    /** Stops sending; resolves with the line count once every chunk is acknowledged OK. */
    async stop(): Promise<number> {
      stopped = true;
      await loop;
      const acks = await stream.waitForAcks(chunks, 30_000);
      expect(acks.filter((a) => a.code !== 'OK')).toEqual([]);
      await stream.finish();
      client.close();
      return sent;
    },
  };
}

const FAST_AGGREGATOR_ENV = {
  AGGREGATOR_MAX_BATCH_SIZE: '50',
  AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '20ms',
  AGGREGATOR_EMIT_MAX_RETRIES: '2',
  AGGREGATOR_EMIT_RETRY_INITIAL_DELAY: '20ms',
  AGGREGATOR_EMIT_RETRY_MAX_DELAY: '200ms',
};

describe('aggregator file output: rotation, SIGHUP and a removed directory while shipping (real process)', () => {
  let dir: string;
  let agg: AggregatorProcess | undefined;
  let collector: CollectorProcess | undefined;
  let held: FileHandle | undefined;
  const cleanups: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-agg-output-'));
  });
  afterEach(async () => {
    await collector?.kill();
    await agg?.kill();
    collector = undefined;
    agg = undefined;
    await held?.close().catch(() => undefined);
    held = undefined;
    for (const c of cleanups.splice(0)) await c();
    await rm(dir, { recursive: true, force: true });
  });

  it('mv + SIGHUP, mv alone, and mv + create + SIGHUP: every line in exactly one file, in order; the aggregator lives', async () => {
    const path = join(dir, 'shipped.log');
    agg = await startAggregator({
      env: { ...FAST_AGGREGATOR_ENV, AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path }) },
    });
    const pid = agg.child.pid as number;
    const ship = startShipping(agg.address);
    const grows = async (p: string, more: number): Promise<void> => {
      const from = (await linesOf(p)).length;
      await waitFor(async () => (await linesOf(p)).length >= from + more, { timeoutMs: 20_000, intervalMs: 25, what: `${p} to grow` });
    };

    // 1. logrotate's default (rename, nocreate) with postrotate `kill -HUP`.
    await grows(path, 300);
    await run('mv', [path, `${path}.1`]);
    process.kill(pid, 'SIGHUP');
    await grows(path, 300);
    // 2. mv and no signal at all: the emitter notices by itself at its next batch.
    await run('mv', [path, `${path}.2`]);
    await grows(path, 300);
    // 3. logrotate's `create`: a new empty file appears before the signal (never truncating one the
    // emitter may have created meanwhile: that would be the test destroying lines).
    await run('mv', [path, `${path}.3`]);
    await writeFile(path, '', { flag: 'a' });
    process.kill(pid, 'SIGHUP');
    await grows(path, 300);

    const total = await ship.stop();
    await waitFor(async () => (await agg?.metric('mega_aggregator_entries_emitted_total')) === total, { timeoutMs: 20_000, intervalMs: 25, what: 'every line emitted' });
    const files = [await linesOf(`${path}.1`), await linesOf(`${path}.2`), await linesOf(`${path}.3`), await linesOf(path)];
    const result = account(files, total);
    console.log(`rotation: ${total} lines shipped; per file ${files.map((f) => f.length).join(' / ')}; lost ${result.lost}, duplicated ${result.duplicated}`);
    expect(result).toEqual({ lost: 0, duplicated: 0, inOrder: true });
    for (const f of files) expect(f.length).toBeGreaterThan(0);

    expect(agg.child.exitCode).toBeNull();
    expect(await agg.metric('mega_aggregator_file_reopens_total', { reason: 'signal' })).toBe(2);
    expect(await agg.metric('mega_aggregator_file_reopens_total', { reason: 'renamed' })).toBeGreaterThanOrEqual(1);
    expect(agg.logs.filter((l) => l.includes('SIGHUP: reopening the output'))).toHaveLength(2);
    expect(await agg.stop()).toBe(0);
  });

  it('rm -rf of the output directory while shipping, recreated later: nothing confirmed into the deleted file, retries, one PagerDuty trigger and resolve', async () => {
    const certs = await generateTestCerts();
    cleanups.push(() => certs.cleanup());
    const api = await startFakeEventsApi({ cert: certs.server.cert, key: certs.server.key });
    cleanups.push(() => api.close());
    const out = join(dir, 'out');
    await mkdir(out);
    const path = join(out, 'shipped.log');
    agg = await startAggregator({
      env: {
        ...FAST_AGGREGATOR_ENV,
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path }),
        AGGREGATOR_NOTIFY_CONFIGURATION: JSON.stringify({
          integration_key: 'R0UTINGKEY',
          incident_key: 'mega-aggregator-output-removed',
          identifier: 'aggregator-under-test',
          server: api.host,
        }),
        NODE_EXTRA_CA_CERTS: certs.ca.certPath,
      },
    });
    const ship = startShipping(agg.address);
    await waitFor(async () => (await linesOf(path)).length >= 500, { timeoutMs: 20_000, intervalMs: 25, what: 'the first lines' });

    // Keep the file's inode readable, to see afterwards what the deleted file holds.
    held = await open(path, 'r');
    await run('rm', ['-rf', out]);
    const firstSentAfterRemoval = ship.sent;

    const [trigger] = await api.waitForEvents(1);
    expect(trigger?.event_action).toBe('trigger');
    expect(trigger?.payload?.summary).toMatch(/ENOENT/);
    const retries = await agg.metric('mega_aggregator_emit_retries_total');
    expect(retries).toBeGreaterThanOrEqual(2);
    expect(await agg.metric('mega_aggregator_file_reopens_total', { reason: 'deleted' })).toBe(1);
    await sleep(500); // more lines arrive while the directory is missing; they wait in the spool
    expect(await agg.metric('mega_aggregator_spool_pending_entries')).toBeGreaterThan(0);

    await mkdir(out);
    const events = await api.waitForEvents(2);
    expect(events.map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
    await sleep(200);

    const total = await ship.stop();
    await waitFor(async () => (await agg?.metric('mega_aggregator_entries_emitted_total')) === total, { timeoutMs: 20_000, intervalMs: 25, what: 'every line emitted' });
    const inDeleted = (await held.readFile('utf8')).split('\n').filter((l) => l !== '');
    const inNew = await linesOf(path);
    const result = account([inDeleted, inNew], total);
    console.log(
      `rm -rf: ${total} lines shipped; ${inDeleted.length} were in the file when its directory was removed, ` +
        `${inNew.length} in the new file; ${retries}+ retries; lost ${result.lost}, duplicated ${result.duplicated}`,
    );
    // The deleted file holds only what was confirmed before the removal: every line sent after it is
    // in the new file, and nothing is in both.
    expect(result).toEqual({ lost: 0, duplicated: 0, inOrder: true });
    expect(inDeleted.length).toBeGreaterThanOrEqual(500);
    expect(inDeleted.length).toBeLessThanOrEqual(firstSentAfterRemoval);
    expect(inNew.length).toBeGreaterThan(total - firstSentAfterRemoval - 1);
    expect(agg.logs.some((l) => l.includes('emit failed; retrying') && l.includes('ENOENT'))).toBe(true);
    expect(await agg.stop()).toBe(0);
    expect(api.events.map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
  });

  it('SIGHUP to the collector and to the aggregator while a real collector ships: neither dies, every line once', async () => {
    const path = join(dir, 'shipped.log');
    const input = join(dir, 'input.log');
    agg = await startAggregator({
      env: { ...FAST_AGGREGATOR_ENV, AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path }) },
    });
    await writeFile(input, '');
    collector = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_REMOTE_ADDRESS: agg.address,
      COLLECTOR_FILES: input,
      COLLECTOR_STATE_DIR: join(dir, 'state'),
    });
    let written = 0;
    const writeSome = (n: number): void => {
      appendFileSync(input, Array.from({ length: n }, (_, i) => `${lineText(written + i)}\n`).join(''));
      written += n;
    };
    for (let round = 0; round < 5; round++) {
      writeSome(400);
      collector.child.kill('SIGHUP');
      agg.child.kill('SIGHUP');
      await sleep(100);
    }
    writeSome(400);
    await waitFor(async () => (await linesOf(path)).length >= written, { timeoutMs: 20_000, intervalMs: 25, what: 'every line in the output' });
    expect(account([await linesOf(path)], written)).toEqual({ lost: 0, duplicated: 0, inOrder: true });
    expect(collector.child.exitCode).toBeNull();
    expect(agg.child.exitCode).toBeNull();
    await collector.waitForLog((r) => r.msg === 'SIGHUP: nothing to reopen; continuing');
    expect(collector.logs.filter((l) => l.includes('SIGHUP: nothing to reopen')).length).toBe(5);
    expect(await agg.metric('mega_aggregator_file_reopens_total', { reason: 'signal' })).toBe(5);
    expect(await collector.stop()).toBe(0);
    expect(await agg.stop()).toBe(0);
  });
});

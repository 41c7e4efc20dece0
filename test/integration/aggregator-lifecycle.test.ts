import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/spool.js';
import { decodeEntries, encodeEntries } from '../../src/wire/entry-batch.js';
import { runAggregator, startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { buildEntries, createIngestClient } from '../helpers/ingest-client.js';
import { tryWaitFor } from '../helpers/wait-for.js';

async function readLines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
}

/** Waits (up to `timeoutMs`) for `n` lines, then returns what the file holds, for the test to judge. */
async function waitForLineCount(path: string, n: number, timeoutMs = 20_000): Promise<string[]> {
  await tryWaitFor(async () => (await readLines(path)).length >= n, { timeoutMs, what: `${n} lines in ${path}` });
  return readLines(path);
}

describe('aggregator: crash, restart, drain and spool commands (real processes)', () => {
  let dir: string;
  const running: AggregatorProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-agg-life-'));
  });

  afterAll(async () => {
    for (const a of running) await a.kill();
    await rm(dir, { recursive: true, force: true });
  });

  const envFor = (name: string, extra: Record<string, string> = {}): Record<string, string> => ({
    AGGREGATOR_SPOOL_DIR: join(dir, name, 'spool'),
    AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: join(dir, `${name}.log`) }),
    ...extra,
  });

  it('kill -9 after acks, then restart: every acknowledged entry is emitted', async () => {
    // Nothing is emitted before the crash: batches wait an hour and hold up to a million entries.
    const hold = { AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '1h', AGGREGATOR_MAX_BATCH_SIZE: '1000000' };
    const first = await startAggregator({ env: envFor('crash', hold) });
    running.push(first);
    const client = createIngestClient(first.address);
    const streams = [client.open(), client.open(), client.open()];
    const expected = new Set<string>();
    for (let c = 0; c < 10; c++) {
      streams.forEach((s, si) => {
        const lines = Array.from({ length: 50 }, (_, i) => `s${si}-c${c}-l${i}`);
        lines.forEach((l) => expected.add(l));
        const { entries, entryCount } = buildEntries(lines.map((l) => ({ data: Buffer.from(l) })), { collectorId: `c${si}` });
        s.send({ sequence: c, entries, entryCount });
      });
    }
    for (const s of streams) {
      const acks = await s.waitForAcks(10);
      expect(acks.every((a) => a.code === 'OK')).toBe(true);
    }
    client.close();
    expect(await first.kill()).toBe('SIGKILL');
    expect(await readLines(join(dir, 'crash.log'))).toEqual([]);

    const second = await startAggregator({ env: envFor('crash', { AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms' }) });
    running.push(second);
    const lines = await waitForLineCount(join(dir, 'crash.log'), expected.size);
    expect(new Set(lines)).toEqual(expected);
    expect(lines).toHaveLength(expected.size);
    // Per-stream order survives the crash.
    for (let si = 0; si < 3; si++) {
      const own = lines.filter((l) => l.startsWith(`s${si}-`));
      const want = [...expected].filter((l) => l.startsWith(`s${si}-`));
      expect(own).toEqual(want);
    }
    expect(await second.stop()).toBe(0);
  });

  it('SIGTERM: every chunk received gets its ack, buffered batches are emitted, exit 0; the rest is kept for the next run', async () => {
    const agg = await startAggregator({
      env: envFor('drain', { AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '1h', AGGREGATOR_MAX_BATCH_SIZE: '1000000' }),
    });
    running.push(agg);
    const client = createIngestClient(agg.address);
    const stream = client.open();
    const first = buildEntries([{ data: Buffer.from('drain-0') }]);
    stream.send({ sequence: 0, entries: first.entries, entryCount: 1 });
    expect((await stream.waitForAcks(1))[0]?.code).toBe('OK');
    for (let c = 1; c <= 30; c++) {
      const { entries, entryCount } = buildEntries([{ data: Buffer.from(`drain-${c}`) }]);
      stream.send({ sequence: c, entries, entryCount });
    }
    agg.child.kill('SIGTERM');
    const finished = stream.finish();
    expect(await agg.exited).toBe(0);
    await finished;
    client.close();
    // Each chunk the server received got exactly one ack, in order; no OK was sent for a chunk that is
    // not in the spool (checked below by what the next run emits).
    const seqs = stream.acks.map((a) => a.sequence);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    for (const a of stream.acks) expect(['OK', 'UNAVAILABLE']).toContain(a.code);
    const okLines = stream.acks.filter((a) => a.code === 'OK').map((a) => `drain-${a.sequence}`);
    // What the batcher had buffered was emitted before exit (at least the first, acked long before).
    const afterStop = await readLines(join(dir, 'drain.log'));
    expect(afterStop).toContain('drain-0');
    expect(agg.logs.some((l) => l.includes('"msg":"stopped"'))).toBe(true);

    const again = await startAggregator({ env: envFor('drain', { AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms' }) });
    running.push(again);
    const lines = await waitForLineCount(join(dir, 'drain.log'), okLines.length);
    for (const l of okLines) expect(lines).toContain(l);
    expect(await again.stop()).toBe(0);
  });

  it('SIGTERM exits 0 within its deadline even when the emitter cannot finish closing (Aeron channel without a subscriber)', async () => {
    const agg = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'aeron-close', 'spool'),
        AGGREGATOR_SHUTDOWN_TIMEOUT: '300ms',
        // Nobody subscribes there: the publication would linger 5 s looking for its receiver.
        AGGREGATOR_AERON_CONFIGURATION: JSON.stringify({ channel: 'aeron:udp?endpoint=127.0.0.1:40997', stream_id: 3 }),
      },
    });
    running.push(agg);
    const started = Date.now();
    agg.child.kill('SIGTERM');
    expect(await agg.exited).toBe(0);
    // Deadline 300 ms + the 1 s grace the emitter's close gets; the linger alone would be 5 s.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(agg.logs.some((l) => l.includes('did not finish closing before the shutdown deadline'))).toBe(true);
  });

  it('a full spool refuses chunks with RESOURCE_EXHAUSTED (nothing dropped); once delivered segments are deleted, the resent chunk is accepted', async () => {
    const small = { AGGREGATOR_SPOOL_MAX_BYTES: '32KiB', AGGREGATOR_SPOOL_SEGMENT_BYTES: '4KiB', AGGREGATOR_MAX_CHUNK_BYTES: '16KiB' };
    const held = await startAggregator({ env: envFor('full', { ...small, AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '1h', AGGREGATOR_MAX_BATCH_SIZE: '1000000' }) });
    running.push(held);
    let client = createIngestClient(held.address);
    let stream = client.open();
    const chunkOf = (i: number) => buildEntries([{ data: Buffer.from(`full-${i}-${'x'.repeat(10_000)}`) }]);
    for (let i = 0; i < 6; i++) stream.send({ sequence: i, ...chunkOf(i) });
    const acks = await stream.waitForAcks(6);
    const ok = acks.filter((a) => a.code === 'OK').map((a) => a.sequence);
    const refused = acks.filter((a) => a.code === 'RESOURCE_EXHAUSTED');
    expect(ok.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((a) => a.retryAfterMs > 0)).toBe(true);
    expect(ok).toEqual(acks.slice(0, ok.length).map((a) => a.sequence)); // refusals only after the accepted prefix
    expect(await held.metric('mega_aggregator_chunks_refused_total', { reason: 'spool_full' })).toBe(refused.length);
    client.close();
    expect(await held.stop()).toBe(0);

    const flowing = await startAggregator({ env: envFor('full', { ...small, AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms' }) });
    running.push(flowing);
    const logPath = join(dir, 'full.log');
    await waitForLineCount(logPath, ok.length);
    client = createIngestClient(flowing.address);
    stream = client.open();
    const retry = refused[0]?.sequence as number;
    // Delivered segments are deleted in the background: resend until there is room, as a collector does.
    for (let attempt = 0; ; attempt++) {
      stream.send({ sequence: 100 + attempt, ...chunkOf(retry) });
      const a = (await stream.waitForAcks(attempt + 1)).at(-1);
      if (a?.code === 'OK') break;
      expect(a?.code).toBe('RESOURCE_EXHAUSTED');
      expect(attempt).toBeLessThan(50);
      await new Promise((r) => setTimeout(r, a?.retryAfterMs ?? 100));
    }
    const lines = await waitForLineCount(logPath, ok.length + 1);
    expect(lines.map((l) => l.split('-').slice(0, 2).join('-'))).toEqual([...ok.map((i) => `full-${i}`), `full-${retry}`]);
    client.close();
    expect(await flowing.stop()).toBe(0);
  });

  it('spool status prints positions and dead letters; replay-dead-letters hands them to the emitter and removes them', async () => {
    const spoolDir = join(dir, 'dead', 'spool');
    const spool = await Spool.open({ dir: spoolDir, maxBytes: 1024 * 1024 });
    const entries = decodeEntries(buildEntries([{ data: Buffer.from('dead-1') }, { data: Buffer.from([0x64, 0xff, 0x32]) }]).entries);
    await spool.deadLetter(encodeEntries(entries), 'test: refused by the emitter');
    await spool.close();

    const status = await runAggregator(envFor('dead'), ['spool', 'status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/dead letters:\s+2/);
    expect(status.stdout).toMatch(/delivered position: segment \d+ offset \d+/);
    expect(status.stdout).toMatch(/bytes:\s+\d+ \(bound \d+\)/);

    const replay = await runAggregator(envFor('dead'), ['spool', 'replay-dead-letters']);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(/replayed 1 of 1 dead letters \(2 entries\)/);
    const out = await readFile(join(dir, 'dead.log'));
    expect(out.equals(Buffer.from([...Buffer.from('dead-1\n'), 0x64, 0xff, 0x32, 0x0a]))).toBe(true);
    expect(await Spool.readDeadLetters(spoolDir)).toEqual([]);
    const after = await runAggregator(envFor('dead'), ['spool', 'status']);
    expect(after.stdout).toMatch(/dead letters:\s+0/);
  });
});

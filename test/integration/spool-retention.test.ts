import { readdir } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, McError } from '../../src/errors.js';
import { Spool } from '../../src/spool/spool.js';
import type { SpoolOptions } from '../../src/spool/spool.js';
import type { SpoolRecord } from '../../src/spool/spool-types.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import { runAggregator } from '../helpers/aggregator-process.js';
import { makeBatch, tempDir } from '../helpers/spool-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function freshDir(): Promise<string> {
  const t = await tempDir('spool-retention-');
  cleanups.push(t.cleanup);
  return t.dir;
}

async function open(options: SpoolOptions): Promise<Spool> {
  const spool = await Spool.open(options);
  cleanups.push(() => spool.close());
  return spool;
}

async function segmentNumbers(dir: string): Promise<number[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.seg')).map((n) => Number(n.slice(0, 20))).sort((a, b) => a - b);
}

/** Appends `n` records of ~1.2 KiB (10 entries each), numbered from `first`. */
async function appendRecords(spool: Spool, first: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await spool.append(makeBatch((first + i) * 10, 10, 'c-1', 100), 10);
}

/** Reads `n` records and marks everything through the last delivered. */
async function deliver(spool: Spool, reader: ReturnType<Spool['reader']>, n: number): Promise<SpoolRecord[]> {
  const out: SpoolRecord[] = [];
  for (let i = 0; i < n; i++) out.push(await reader.next(AbortSignal.timeout(5000)));
  const last = out[out.length - 1];
  if (last !== undefined) spool.markDelivered({ ...last.next, entry: 0 });
  return out;
}

function poll<T>(fn: () => T | Promise<T>) {
  return expect.poll(fn, { timeout: 15_000, interval: 10 });
}

describe('spool retention (real files, virtual time)', () => {
  it('keeps delivered segments until older than the age (counted from sealing, on the injected clock), across a reopen', async () => {
    const dir = await freshDir();
    const clock = new ManualClock();
    const options: SpoolOptions = { dir, maxBytes: 1 << 30, segmentBytes: 4096, retention: { maxAgeMs: 60_000 }, clock };
    let spool = await open(options);
    await appendRecords(spool, 0, 10); // ~3 segments sealed now (t = 0)
    clock.advance(30_000);
    await appendRecords(spool, 10, 10); // more sealed at t = 30 s
    const reader = spool.reader();
    await deliver(spool, reader, 20);
    await spool.close();
    spool = await open(options); // delivered segments survive a restart under retention
    const sealedEarly = (await segmentNumbers(dir)).slice(0, 3);
    const retained = spool.stats().retainedBytes;
    expect(retained).toBeGreaterThan(4 * 4096 * 0.5);
    expect(spool.stats().pendingEntries).toBe(0);
    // Sealing times of the reopened segments come from their files; what this run seals uses the clock.
    await spool.close();

    const clock2 = new ManualClock(Date.now());
    spool = await open({ ...options, clock: clock2 });
    await appendRecords(spool, 20, 10); // seals the active segment and more at "now"
    const r2 = spool.reader();
    await deliver(spool, r2, 10);
    await poll(() => spool.stats().pendingEntries).toBe(0);
    const before = await segmentNumbers(dir);
    expect(before.slice(0, 3)).toEqual(sealedEarly);
    clock2.advance(59_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(await segmentNumbers(dir)).toEqual(before); // not yet
    clock2.advance(2_000); // everything is older than a minute now: only the active segment remains
    await poll(() => segmentNumbers(dir)).toHaveLength(1);
    expect(spool.stats().retainedBytes).toBe(0);
    expect(spool.stats().oldestRetainedMs).toBeUndefined();
  });

  it('keeps at most the size: the oldest retained segments go first', async () => {
    const dir = await freshDir();
    const spool = await open({ dir, maxBytes: 1 << 30, segmentBytes: 4096, retention: { maxBytes: 9000 }, clock: new ManualClock() });
    await appendRecords(spool, 0, 30);
    await deliver(spool, spool.reader(), 30);
    await poll(() => spool.stats().retainedBytes).toBeLessThanOrEqual(9000);
    const left = await segmentNumbers(dir);
    // The newest sealed segments are kept (two of about 4 KiB fit), the active one besides.
    expect(spool.stats().retainedBytes).toBeGreaterThan(4000);
    expect(left[0]).toBeGreaterThan(1);
    expect(left.length).toBeGreaterThanOrEqual(3);
    expect(left.slice(1).every((n, i) => n === (left[i] as number) + 1)).toBe(true);
  });

  it('a full spool evicts retained segments, oldest first, and never a pending one', async () => {
    const dir = await freshDir();
    const maxBytes = 64 * 1024;
    const spool = await open({ dir, maxBytes, segmentBytes: 4096, retention: { maxAgeMs: 3_600_000 }, clock: new ManualClock() });
    const reader = spool.reader();
    await appendRecords(spool, 0, 40); // ~48 KiB, then delivered: retained
    await deliver(spool, reader, 40);
    await poll(() => spool.stats().retainedBytes).toBeGreaterThan(30_000);
    // Undelivered data now: it may take the retained room, but never more than the bound.
    let accepted = 0;
    for (let i = 40; ; i++) {
      try {
        await spool.append(makeBatch(i * 10, 10, 'c-1', 100), 10);
        accepted++;
      } catch (err) {
        expect(err).toBeInstanceOf(McError);
        expect((err as McError).code).toBe(ErrorCode.SpoolFull);
        break;
      }
      expect(spool.stats().bytes).toBeLessThanOrEqual(maxBytes);
      if (i > 200) throw new Error('never full');
    }
    expect(accepted).toBeGreaterThan(40); // more than what fit beside the retained segments
    expect(spool.stats().retainedBytes).toBeLessThan(4096 * 2);
    // Every pending record is still there, in order.
    const back = await deliver(spool, reader, accepted);
    expect(back.map((r) => r.data.equals(makeBatch((40 + back.indexOf(r)) * 10, 10, 'c-1', 100)))).toEqual(back.map(() => true));
    await expect(reader.next(AbortSignal.timeout(100))).rejects.toThrow();
  });
});

describe('mega-aggregator spool list / purge (real child process)', () => {
  it('lists each segment with positions, entry times, entries, bytes and status; purge drops retained ones only', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 30, segmentBytes: 4096, retention: { maxAgeMs: 3_600_000 } });
    await appendRecords(spool, 0, 12);
    const reader = spool.reader();
    const read = await deliver(spool, reader, 6);
    await spool.close();
    const deliveredTo = read[read.length - 1]!.next;

    const env = { AGGREGATOR_SPOOL_DIR: dir, AGGREGATOR_SPOOL_RETENTION: '1h' };
    const list = await runAggregator(env, ['spool', 'list']);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    const lines = list.stdout.trimEnd().split('\n');
    const segs = await segmentNumbers(dir);
    expect(lines).toHaveLength(segs.length + 1);
    expect(lines[0]).toMatch(/^segment\s+first\s+last\s+first entry time\s+last entry time\s+entries\s+bytes\s+status$/);
    const rows = lines.slice(1).map((l) => l.split(/\s+/));
    expect(rows.map((r) => Number(r[0]))).toEqual(segs);
    // makeBatch stamps entry i with time i ns: the first segment starts at entry 0.
    expect(rows[0]!.slice(1, 4)).toEqual([`${segs[0]}:16`, expect.stringMatching(new RegExp(`^${segs[0]}:\\d+$`)), '1970-01-01T00:00:00.000Z']);
    expect(rows.reduce((n, r) => n + Number(r[5]), 0)).toBe(120);
    const statuses = rows.map((r) => r[7]);
    expect(statuses.filter((s) => s === 'retained').length).toBeGreaterThan(0);
    expect(statuses[statuses.length - 1]).toBe('pending');
    for (const r of rows) expect(Number(r[6])).toBeGreaterThan(16);

    const json = await runAggregator(env, ['spool', 'list', '--json']);
    const objs = json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objs.map((o) => o.segment)).toEqual(segs);
    expect(objs.map((o) => o.status)).toEqual(statuses);
    // Retained exactly when the whole segment is before the delivered position.
    for (const o of objs) {
      const end = o.end_position as { segment: number; offset: number };
      const delivered = end.segment < deliveredTo.segment || (end.segment === deliveredTo.segment && end.offset <= deliveredTo.offset);
      expect(o.status).toBe(delivered ? 'retained' : 'pending');
    }

    const purge = await runAggregator(env, ['spool', 'purge', '--before', `${deliveredTo.segment + 5}:0`]);
    expect(purge.code).toBe(0);
    const retainedCount = statuses.filter((s) => s === 'retained').length;
    expect(purge.stdout).toMatch(new RegExp(`^purged ${retainedCount} retained segments`));
    const after = await segmentNumbers(dir);
    expect(after).toEqual(segs.filter((_, i) => statuses[i] === 'pending'));
    // The pending records are all still there.
    const reopened = await open({ dir, maxBytes: 1 << 30, segmentBytes: 4096 });
    expect(reopened.stats().pendingEntries).toBe(60);

    const bad = await runAggregator(env, ['spool', 'purge', '--before', 'someday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('--before');
    const badEnv = await runAggregator({ ...env, AGGREGATOR_SPOOL_RETENTION: 'forever' }, ['spool', 'list']);
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/AGGREGATOR_SPOOL_RETENTION: .*forever/);
  });
});

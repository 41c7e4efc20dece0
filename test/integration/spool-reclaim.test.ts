import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, ErrorCode, McError } from '../../src/errors.js';
import type { StatVolume } from '../../src/spool/free-space.js';
import { Spool } from '../../src/spool/spool.js';
import type { SpoolRecord } from '../../src/spool/spool.js';
import { makeBatch, tempDir } from '../helpers/spool-fixtures.js';

/**
 * Free-space admission and reclaiming of a delivered active segment, on real files, with a volume of
 * chosen size: the directory stands for the whole volume (its files' bytes are what is used). The
 * full-disk path through a real tmpfs (ENOSPC, truncation in place) is in spool-small-volume.test.ts.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function volumeOf(dir: string, capacity: number): StatVolume {
  return async () => {
    let used = 0;
    for (const n of await readdir(dir)) used += (await stat(join(dir, n))).size;
    return { totalBytes: capacity, availableBytes: Math.max(0, capacity - used) };
  };
}

async function freshDir(): Promise<string> {
  const t = await tempDir('spool-reclaim-');
  cleanups.push(t.cleanup);
  return t.dir;
}

function segments(names: string[]): string[] {
  return names.filter((n) => n.endsWith('.seg')).sort();
}

async function deliverAll(spool: Spool, count: number): Promise<void> {
  const reader = spool.reader();
  let last: SpoolRecord | undefined;
  for (let i = 0; i < count; i++) last = await reader.next(AbortSignal.timeout(5000));
  spool.markDelivered({ ...(last as SpoolRecord).next, entry: 0 });
}

describe('spool: free space and reclaiming delivered space', () => {
  it('refuses an append that would eat into the reserve, naming the variable, before the volume is full', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 30, minFreeBytes: 256 * KiB, statVolume: volumeOf(dir, 1 * MiB) });
    cleanups.push(() => spool.close());
    await spool.append(makeBatch(0, 100, 'c', 4000), 100); // ~400 KiB
    const err = await spool.append(makeBatch(100, 100, 'c', 4000), 100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McError);
    expect((err as McError).code).toBe(ErrorCode.SpoolFull);
    expect((err as McError).message).toMatch(/spool volume is nearly full: \d+ bytes free, 262144 kept free \(AGGREGATOR_SPOOL_MIN_FREE_BYTES\)/);
    // A smaller record still fits above the reserve.
    await spool.append(makeBatch(200, 10, 'c', 4000), 10);
    expect(spool.stats().appendedRecords).toBe(2);
  });

  it('releases a fully delivered active segment when space runs short (another program filled the rest)', async () => {
    const dir = await freshDir();
    // 1 MiB volume: 256 KiB segments; another program holds 700 KiB.
    await writeFile(join(dir, 'someone-else'), Buffer.alloc(700 * KiB));
    const spool = await Spool.open({ dir, maxBytes: 1 << 30, segmentBytes: 64 * MiB, minFreeBytes: 64 * KiB, statVolume: volumeOf(dir, 1 * MiB) });
    cleanups.push(() => spool.close());
    await spool.append(makeBatch(0, 25, 'c', 4000), 25); // ~100 KiB
    await spool.append(makeBatch(25, 25, 'c', 4000), 25);
    await deliverAll(spool, 2);
    expect(segments(await readdir(dir))).toHaveLength(1);
    // The active segment holds ~200 KiB, all delivered: the next 100 KiB do not fit above the reserve.
    const refused = await spool.append(makeBatch(50, 25, 'c', 4000), 25).catch((e: unknown) => e);
    expect((refused as McError).code).toBe(ErrorCode.SpoolFull);
    // ...which releases it: the resend goes in.
    await expect.poll(async () => segments(await readdir(dir)), { timeout: 5000, interval: 20 }).toEqual(['00000000000000000002.seg']);
    await expect.poll(() => spool.append(makeBatch(50, 25, 'c', 4000), 25).then(() => true, () => false), { timeout: 5000, interval: 50 }).toBe(true);
    const r = await spool.reader().next(AbortSignal.timeout(5000));
    expect(r.position.segment).toBe(2);
    expect(r.entryCount).toBe(25);
    expect(spool.stats().pendingEntries).toBe(25);
  });

  it('a fully delivered last segment is released at open, and reopening settles its numbers', async () => {
    const dir = await freshDir();
    const options = { dir, maxBytes: 1 << 30, statVolume: volumeOf(dir, 64 * MiB) };
    const first = await Spool.open(options);
    await first.append(makeBatch(0, 10), 10);
    await deliverAll(first, 1);
    await first.close();
    const again = await Spool.open(options);
    cleanups.push(() => again.close());
    expect(segments(await readdir(dir))).toEqual(['00000000000000000002.seg']);
    expect(again.stats()).toMatchObject({ segments: 1, bytes: 16, pendingEntries: 0 });
  });

  it('sizes segments to a quarter of a small volume, and refuses a reserve as large as the volume', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 30, minFreeBytes: 0, statVolume: volumeOf(dir, 4 * MiB) });
    cleanups.push(() => spool.close());
    for (let i = 0; i < 6; i++) await spool.append(makeBatch(i * 100, 100, 'c', 3000), 100); // ~300 KiB each
    expect(segments(await readdir(dir)).length).toBeGreaterThanOrEqual(2);

    const other = await freshDir();
    const err = await Spool.open({ dir: other, maxBytes: 1 << 30, minFreeBytes: 4 * MiB, statVolume: volumeOf(other, 4 * MiB) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/AGGREGATOR_SPOOL_MIN_FREE_BYTES: keeping 4194304 bytes free leaves no room on the spool's volume of 4194304 bytes/);
  });
});

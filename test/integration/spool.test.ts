import { appendFile, open, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, McError } from '../../src/errors.js';
import { Spool } from '../../src/spool/spool.js';
import type { SpoolRecord } from '../../src/spool/spool.js';
import { decodeEntries, lineSpans } from '../../src/wire/entry-batch.js';
import { makeBatch, tempDir } from '../helpers/spool-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Polls with room for a busy 2-core machine (files are real; the clock of the batcher is not). */
function poll<T>(fn: () => T) {
  return expect.poll(fn, { timeout: 15_000, interval: 5 });
}

async function freshDir(): Promise<string> {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

async function openSpool(dir: string, maxBytes = 1 << 30, segmentBytes?: number): Promise<Spool> {
  const spool = await Spool.open({ dir, maxBytes, ...(segmentBytes === undefined ? {} : { segmentBytes }) });
  cleanups.push(() => spool.close());
  return spool;
}

async function readN(spool: Spool, n: number): Promise<SpoolRecord[]> {
  const reader = spool.reader();
  const out: SpoolRecord[] = [];
  for (let i = 0; i < n; i++) out.push(await reader.next(AbortSignal.timeout(5000)));
  return out;
}

function segmentFiles(names: string[]): string[] {
  return names.filter((n) => n.endsWith('.seg')).sort();
}

describe('Spool', () => {
  it('appends, reads back byte for byte in order, and survives a reopen', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    const batches = Array.from({ length: 20 }, (_, i) => makeBatch(i * 10, 10));
    const positions = await Promise.all(batches.map((b) => spool.append(b, 10)));
    // Positions are distinct and increasing in append order.
    for (let i = 1; i < positions.length; i++) expect(positions[i]!.offset).toBeGreaterThan(positions[i - 1]!.offset);
    const records = await readN(spool, 20);
    expect(records.map((r) => r.data.equals(batches[records.indexOf(r)]!))).toEqual(Array(20).fill(true));
    expect(records[0]!.position).toEqual(positions[0]);
    expect(records[1]!.position).toEqual(records[0]!.next);
    expect(spool.stats()).toMatchObject({ appendedRecords: 20, appendedEntries: 200, pendingEntries: 200 });
    await spool.close();
    await spool.close(); // idempotent

    const again = await openSpool(dir);
    const reread = await readN(again, 20);
    expect(reread.map((r) => r.data.toString('hex'))).toEqual(batches.map((b) => b.toString('hex')));
    expect(again.stats().pendingEntries).toBe(200);
  });

  it('hands the reader what this process appended from memory (no read back, no checksum); after a restart reads and verifies the file', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 30 });
    const batches = Array.from({ length: 3 }, (_, i) => makeBatch(i * 10, 10));
    const positions = [];
    const spans = lineSpans(batches[0]!);
    for (const [i, b] of batches.entries()) positions.push(await spool.append(b, 10, i === 0 ? spans : undefined));
    // Damage the second record's payload on disk while this process still holds it.
    const [segment] = segmentFiles(await readdir(dir));
    const fh = await open(join(dir, segment!), 'r+');
    await fh.write(Buffer.from('XXXX'), 0, 4, positions[1]!.offset + 16 + 8);
    await fh.close();
    const held = await readN(spool, 3);
    expect(held.map((r, i) => r.data.equals(batches[i]!))).toEqual([true, true, true]);
    // The spans an appender had (the ingest's admission scan) come with the record; none were made up.
    expect(held.map((r) => r.spans)).toEqual([spans, undefined, undefined]);
    expect(spool.stats().corruptRanges).toBe(0);
    await spool.close();
    // After the restart the records come from the file: the damage is found by the checksum.
    const again = await openSpool(dir);
    const reread = await readN(again, 2);
    expect(reread.map((r) => r.position)).toEqual([positions[0], positions[2]]);
    expect(reread.map((r) => r.spans)).toEqual([undefined, undefined]);
    expect(again.stats().corruptRanges).toBe(1);
  });

  it('persists the delivered position in two checksummed slots: a torn newest slot falls back to the older one (re-emits, loses nothing)', async () => {
    const dir = await freshDir();
    let spool = await Spool.open({ dir, maxBytes: 1 << 30 });
    for (let i = 0; i < 3; i++) await spool.append(makeBatch(i * 10, 10), 10);
    const recs = await readN(spool, 3);
    spool.markDelivered({ ...recs[0]!.next, entry: 0 });
    await spool.close();
    spool = await Spool.open({ dir, maxBytes: 1 << 30 });
    spool.markDelivered({ ...recs[1]!.next, entry: 0 });
    await spool.close();
    const path = join(dir, 'delivered.pos');
    expect((await stat(path)).size).toBe(1024);
    // Both slots valid: the newer wins.
    spool = await openSpool(dir);
    expect(spool.stats().delivered).toEqual({ ...recs[1]!.next, entry: 0 });
    expect((await readN(spool, 1))[0]!.position).toEqual(recs[2]!.position);
    await spool.close();
    // Tear the newer slot (its sequence is the higher: find it by trying both).
    const fh = await open(path, 'r+');
    const slots = [Buffer.alloc(40), Buffer.alloc(40)];
    await fh.read(slots[0]!, 0, 40, 0);
    await fh.read(slots[1]!, 0, 40, 512);
    const newer = slots[0]!.readBigUInt64LE(8) > slots[1]!.readBigUInt64LE(8) ? 0 : 512;
    await fh.write(Buffer.alloc(20), 0, 20, newer + 20);
    await fh.close();
    const again = await openSpool(dir);
    expect(again.stats().delivered).toEqual({ ...recs[0]!.next, entry: 0 });
    expect((await readN(again, 2)).map((r) => r.position)).toEqual([recs[1]!.position, recs[2]!.position]);
  });

  it('carries a delivered position over from the earlier delivered.json format', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 30 });
    for (let i = 0; i < 3; i++) await spool.append(makeBatch(i * 10, 10), 10);
    const recs = await readN(spool, 3);
    await spool.close();
    await writeFile(join(dir, 'delivered.json'), JSON.stringify({ ...recs[1]!.next, entry: 0 }) + '\n');
    const again = await openSpool(dir);
    expect(again.stats().delivered).toEqual({ ...recs[1]!.next, entry: 0 });
    expect((await readN(again, 1))[0]!.position).toEqual(recs[2]!.position);
  });

  it('group-commits concurrent appends', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    const data = makeBatch(0, 5);
    const all = await Promise.all(Array.from({ length: 200 }, () => spool.append(data, 5)));
    expect(new Set(all.map((p) => `${p.segment}:${p.offset}`)).size).toBe(200);
    expect(spool.stats().appendedRecords).toBe(200);
  });

  it('waits for appends in next() and honours an abort signal', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    const reader = spool.reader();
    const ac = new AbortController();
    const pending = reader.next(ac.signal);
    ac.abort(new Error('enough'));
    await expect(pending).rejects.toThrow('enough');
    const waiting = reader.next();
    await spool.append(makeBatch(0, 3), 3);
    const rec = await waiting;
    expect(decodeEntries(rec.data).map((e) => e.line.toString())).toEqual(['line-0', 'line-1', 'line-2']);
  });

  it('refuses with SpoolFull when over maxBytes (and a record that can never fit), and frees space when delivered', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir, 64 * 1024, 4096);
    const data = makeBatch(0, 100, 'c-1', 30); // a few KiB
    const positions = [];
    let refused: unknown;
    for (let i = 0; i < 100; i++) {
      try {
        positions.push(await spool.append(data, 100));
      } catch (err) {
        refused = err;
        break;
      }
    }
    expect(refused).toBeInstanceOf(McError);
    expect((refused as McError).code).toBe(ErrorCode.SpoolFull);
    expect(spool.bytes).toBeLessThanOrEqual(64 * 1024);
    await expect(spool.append(Buffer.alloc(70 * 1024), 1)).rejects.toMatchObject({ code: ErrorCode.SpoolFull });
    const segmentsBefore = spool.stats().segments;
    expect(segmentsBefore).toBeGreaterThan(2);
    const bytesBefore = spool.bytes;
    const records = await readN(spool, positions.length);
    const last = records[records.length - 1]!;
    spool.markDelivered({ ...last.next, entry: 0 });
    // Only the active segment is kept; bytes drop as each delivered file is removed.
    await poll(async () => segmentFiles(await readdir(dir)).length).toBe(1);
    await poll(() => spool.bytes).toBe(spool.stats().appendPosition.offset);
    expect(spool.bytes).toBeLessThan(bytesBefore);
    expect(spool.stats().segments).toBe(1);
    expect(spool.stats().pendingEntries).toBe(0);
    await spool.append(data, 100); // space again
  });

  it('resumes after a restart from the delivered position, mid-record', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    for (let i = 0; i < 3; i++) await spool.append(makeBatch(i * 10, 10), 10);
    const recs = await readN(spool, 3);
    spool.markDelivered({ ...recs[1]!.position, entry: 4 });
    expect(spool.stats().pendingEntries).toBe(16);
    await spool.close();
    const again = await openSpool(dir);
    expect(again.stats().delivered).toEqual({ ...recs[1]!.position, entry: 4 });
    expect(again.stats().pendingEntries).toBe(16);
    const [first, second] = await readN(again, 2);
    expect(first!.position).toEqual(recs[1]!.position);
    expect(first!.skipEntries).toBe(4);
    expect(second!.skipEntries).toBe(0);
    expect(decodeEntries(second!.data)[0]!.line.toString()).toBe('line-20');
  });

  it('never moves the delivered position back', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    await spool.append(makeBatch(0, 10), 10);
    const [rec] = await readN(spool, 1);
    spool.markDelivered({ ...rec!.position, entry: 5 });
    spool.markDelivered({ ...rec!.position, entry: 2 });
    expect(spool.stats().delivered.entry).toBe(5);
  });

  it('truncates a torn tail on open and keeps every whole record', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    const batches = Array.from({ length: 5 }, (_, i) => makeBatch(i * 3, 3));
    for (const b of batches) await spool.append(b, 3);
    const end = spool.stats().appendPosition;
    await spool.close();
    const file = join(dir, segmentFiles(await readdir(dir))[0]!);

    // Garbage after the last record.
    await appendFile(file, Buffer.from('garbage that is not a record header at all'));
    let again = await Spool.open({ dir, maxBytes: 1 << 30 });
    expect(again.stats().appendPosition).toEqual(end);
    expect((await stat(file)).size).toBe(end.offset);
    await again.close();

    // A record cut in the middle: only the four before it remain.
    await truncate(file, end.offset - 5);
    again = await openSpool(dir);
    const recs = await readN(again, 4);
    expect(recs.map((r) => r.data.toString('hex'))).toEqual(batches.slice(0, 4).map((b) => b.toString('hex')));
    expect(again.stats().appendPosition.offset).toBe(recs[3]!.next.offset);
    // Appending continues after the cut, and the new record is read next.
    await again.append(makeBatch(100, 1), 1);
    const reader = again.reader();
    for (let i = 0; i < 4; i++) await reader.next();
    expect(decodeEntries((await reader.next()).data)[0]!.line.toString()).toBe('line-100');
  });

  it('locks the directory against a second open', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    await expect(Spool.open({ dir, maxBytes: 1 << 20 })).rejects.toMatchObject({ code: ErrorCode.SpoolLocked });
    await spool.close();
    const again = await openSpool(dir);
    expect(again.stats().dir).toBe(dir);
  });

  it('rejects appends after close with SpoolClosed, and wakes a waiting reader', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    const waiting = expect(spool.reader().next()).rejects.toMatchObject({ code: ErrorCode.SpoolClosed });
    await spool.close();
    await waiting;
    await expect(spool.append(makeBatch(0, 1), 1)).rejects.toMatchObject({ code: ErrorCode.SpoolClosed });
  });

  it('keeps dead letters durably with their reason; replayed ones can be removed', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    await spool.deadLetter([makeBatch(0, 2), makeBatch(5, 1)], 'too big for the emitter');
    await spool.deadLetter([makeBatch(9, 4)], 'second');
    expect(spool.stats().deadLetters).toBe(7);
    const letters = await Spool.readDeadLetters(dir);
    expect(letters.map((l) => [l.entryCount, l.reason])).toEqual([
      [2, 'too big for the emitter'],
      [1, 'too big for the emitter'],
      [4, 'second'],
    ]);
    expect(letters[2]!.data.equals(makeBatch(9, 4))).toBe(true);
    await Spool.removeDeadLetters(dir, 2);
    expect((await Spool.readDeadLetters(dir)).map((l) => l.reason)).toEqual(['second']);
    await spool.deadLetter([makeBatch(20, 1)], 'third');
    expect((await Spool.readDeadLetters(dir)).map((l) => l.reason)).toEqual(['second', 'third']);
    expect(spool.stats().deadLetters).toBe(5);
    await spool.close();
    expect((await Spool.inspect(dir)).deadLetters).toBe(5);
  });

  it('inspect reports segments, positions and pending entries without opening', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir, 1 << 30, 4096);
    for (let i = 0; i < 10; i++) await spool.append(makeBatch(i * 50, 50, 'c-1', 20), 50);
    const recs = await readN(spool, 10);
    spool.markDelivered({ ...recs[0]!.next, entry: 0 });
    const live = spool.stats();
    await spool.close();
    const seen = await Spool.inspect(dir);
    expect(seen).toMatchObject({
      segments: live.segments,
      bytes: live.bytes,
      appendPosition: live.appendPosition,
      delivered: live.delivered,
      pendingEntries: 450,
      deadLetters: 0,
    });
    await expect(Spool.inspect(join(dir, 'nope'))).rejects.toBeInstanceOf(McError);
  });

  it('takes over a stale lock left by a dead process', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'spool.lock'), JSON.stringify({ pid: 2 ** 22 + 12345 }));
    const spool = await openSpool(dir);
    expect(spool.stats().segments).toBe(1);
    await spool.close();
    await writeFile(join(dir, 'spool.lock'), 'half-writ');
    await (await openSpool(dir)).close();
  });

  it('writes thousands of concurrent small appends in one group (more than IOV_MAX buffers)', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    const batches = Array.from({ length: 3000 }, (_, i) => makeBatch(i, 1));
    await Promise.all(batches.map((b) => spool.append(b, 1)));
    expect(spool.stats().groupCommits).toBeLessThan(10);
    const records = await readN(spool, 3000);
    expect(records.every((r, i) => r.data.equals(batches[i]!))).toBe(true);
    await spool.close();
    const files = segmentFiles(await readdir(dir));
    const sizes = await Promise.all(files.map(async (f) => (await stat(join(dir, f))).size));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(spool.stats().bytes);
  });

  it('ignores a delivered position beyond the durable end', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir);
    await spool.append(makeBatch(0, 2), 2);
    const before = spool.stats().delivered;
    spool.markDelivered({ segment: before.segment + 5, offset: 16, entry: 0 });
    expect(spool.stats().delivered).toEqual(before);
    expect(spool.stats().pendingEntries).toBe(2);
  });

  it('continues with new, higher segment numbers after every segment was delivered and deleted', async () => {
    const dir = await freshDir();
    const spool = await openSpool(dir, 1 << 30, 4096);
    for (let i = 0; i < 10; i++) await spool.append(makeBatch(i * 40, 40, 'c-1', 20), 40);
    const recs = await readN(spool, 10);
    spool.markDelivered({ ...recs[9]!.next, entry: 0 });
    await spool.close();
    const again = await openSpool(dir, 1 << 30, 4096);
    expect(again.stats().segments).toBe(1);
    expect(again.stats().pendingEntries).toBe(0);
    const reader = again.reader();
    const pos = await again.append(makeBatch(1000, 1), 1);
    expect(pos.segment).toBeGreaterThanOrEqual(recs[9]!.position.segment);
    expect(decodeEntries((await reader.next()).data)[0]!.line.toString()).toBe('line-1000');
  });
});

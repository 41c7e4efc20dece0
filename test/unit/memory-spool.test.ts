import { describe, expect, it } from 'vitest';
import { ErrorCode, McError } from '../../src/errors.js';
import { MemorySpool } from '../../src/spool/memory-spool.js';

describe('MemorySpool (SpoolPort in memory, for unit tests)', () => {
  it('reads appended records in order, waiting for later appends', async () => {
    const spool = new MemorySpool();
    spool.append(Buffer.from('a'), 2);
    const reader = spool.reader();
    const first = await reader.next();
    expect(first).toMatchObject({ position: { segment: 0, offset: 0 }, next: { segment: 0, offset: 1 }, entryCount: 2, skipEntries: 0 });
    const later = reader.next();
    spool.append(Buffer.from('b'), 1);
    expect((await later).data.toString()).toBe('b');
  });

  it('starts from a delivered position, skipping the entries of the first record already delivered', async () => {
    const spool = new MemorySpool({ segment: 0, offset: 1, entry: 3 });
    spool.append(Buffer.from('a'), 1);
    spool.append(Buffer.from('b'), 5);
    const record = await spool.reader().next();
    expect(record.data.toString()).toBe('b');
    expect(record.skipEntries).toBe(3);
    expect(spool.delivered).toEqual({ segment: 0, offset: 1, entry: 3 });
  });

  it('keeps delivered positions and dead letters to assert on, and can fail a dead-letter write', async () => {
    const spool = new MemorySpool();
    spool.markDelivered({ segment: 0, offset: 1, entry: 0 });
    spool.deadLetterFailures.push(new Error('disk full'));
    await expect(spool.deadLetter([Buffer.from('x')], 'too big')).rejects.toThrow('disk full');
    await spool.deadLetter([Buffer.from('x')], 'too big');
    expect(spool.deadLetters.map((d) => [d.data.toString(), d.reason])).toEqual([['x', 'too big']]);
    expect(spool.delivered).toEqual({ segment: 0, offset: 1, entry: 0 });
  });

  it('a waiting reader ends on abort and on close', async () => {
    const spool = new MemorySpool();
    const ac = new AbortController();
    const aborted = spool.reader().next(ac.signal);
    ac.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    const waiting = spool.reader().next();
    spool.close();
    await expect(waiting).rejects.toSatisfy((e: unknown) => e instanceof McError && e.code === ErrorCode.SpoolClosed);
  });
});

import { describe, expect, it } from 'vitest';
import { RecentRecords } from '../../src/spool/recent-records.js';

const at = (segment: number, offset: number) => ({ segment, offset });

describe('RecentRecords (appended records held for the reader)', () => {
  it('hands each record over once, at its position, with where the next one starts', () => {
    const recent = new RecentRecords(1000);
    recent.add(at(1, 16), Buffer.from('aaaa'), 2);
    recent.add(at(1, 36), Buffer.from('bb'), 1);
    expect(recent.take(1, 16)).toMatchObject({ segment: 1, offset: 16, next: 36, entryCount: 2 });
    expect(recent.take(1, 16)).toBeUndefined();
    expect(recent.take(1, 36)?.data.toString()).toBe('bb');
    expect(recent.heldBytes).toBe(0);
  });

  it('hands over the line spans the appender had, and none when it had none', () => {
    const recent = new RecentRecords(1000);
    const spans = Uint32Array.of(3, 5, 8, 9);
    recent.add(at(1, 16), Buffer.from('aaaaaaaaaa'), 2, spans);
    recent.add(at(1, 42), Buffer.from('b'), 1);
    expect(recent.take(1, 16)?.spans).toBe(spans);
    expect(recent.take(1, 42)?.spans).toBeUndefined();
  });

  it('a reader past a record lets it (and all before it) go; a reader before the first held one finds nothing', () => {
    const recent = new RecentRecords(1000);
    recent.add(at(1, 16), Buffer.from('a'), 1);
    recent.add(at(1, 33), Buffer.from('b'), 1);
    recent.add(at(2, 16), Buffer.from('c'), 1);
    expect(recent.take(0, 500)).toBeUndefined();
    expect(recent.heldBytes).toBe(3);
    // The reader read 1:16 and 1:33 from the file (e.g. it started from a delivered position there).
    expect(recent.take(2, 16)?.data.toString()).toBe('c');
    expect(recent.heldBytes).toBe(0);
  });

  it('holds at most maxBytes of payload, letting the oldest go first, and never a record larger than that', () => {
    const recent = new RecentRecords(10);
    recent.add(at(1, 16), Buffer.alloc(4), 1);
    recent.add(at(1, 36), Buffer.alloc(4), 1);
    recent.add(at(1, 56), Buffer.alloc(4), 1);
    expect(recent.heldBytes).toBe(8);
    expect(recent.take(1, 16)).toBeUndefined();
    expect(recent.take(1, 36)).toBeDefined();
    recent.add(at(1, 76), Buffer.alloc(11), 1);
    expect(recent.heldBytes).toBe(4);
    expect(recent.take(1, 56)).toBeDefined();
    expect(recent.take(1, 76)).toBeUndefined();
  });

  it('keeps its queue compact over many records', () => {
    const recent = new RecentRecords(64);
    for (let i = 0; i < 10_000; i++) {
      recent.add(at(1, 16 + i * 20), Buffer.alloc(4), 1);
      if (i % 3 === 0) expect(recent.take(1, 16 + i * 20)).toBeDefined();
    }
    expect(recent.heldBytes).toBeLessThanOrEqual(64);
  });
});

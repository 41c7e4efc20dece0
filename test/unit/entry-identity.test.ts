import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FileRanges, IdentityCollector, IdentityRanges, identityRuns, nextOffset } from '../../src/wire/entry-identity.js';
import { LineFlag, scanEntryBatch } from '../../src/wire/entry-batch.js';
import { buildEntries } from '../helpers/ingest-client.js';

/** Lines of `len` bytes each, "\n"-terminated, from `start`: their offsets. */
function offsets(start: number, count: number, len: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i * (len + 1));
}

describe('entry identity ranges', () => {
  it('the successor of a line starts after its newline; of a piece or a last line without newline, right after it', () => {
    expect(nextOffset(100, 9, 0)).toBe(110);
    expect(nextOffset(100, 9, LineFlag.Partial)).toBe(109);
    expect(nextOffset(100, 9, LineFlag.NoNewline)).toBe(109);
    expect(nextOffset(100, 9, LineFlag.Multiline)).toBe(110);
  });

  it('merges runs that follow each other exactly, in any order', () => {
    const f = new FileRanges();
    f.add(0, 90, 100); // lines at 0..90 of 9 bytes
    f.add(200, 290, 300);
    expect(f.ranges).toHaveLength(2);
    f.add(100, 190, 200); // the gap filled: one range
    expect(f.ranges).toEqual([{ lo: 0, hi: 290, next: 300 }]);
    expect(f.has(150)).toBe(true);
    expect(f.has(300)).toBe(false);
  });

  it('never takes an entry in a gap for a replay (a chunk refused and resent after later ones were accepted)', () => {
    const f = new FileRanges();
    f.add(100, 190, 200); // chunk 2 accepted first
    for (const o of offsets(0, 10, 9)) expect(f.has(o)).toBe(false); // chunk 1's entries are new
    expect(f.overlaps(0, 90)).toBe(false);
    // A "\r\n" gap of one byte is ambiguous (a missing empty line?): kept apart, not merged.
    f.add(202, 250, 260);
    expect(f.ranges).toHaveLength(2);
    expect(f.has(201)).toBe(false);
  });

  it('forgets the lowest range past its bound, and the least recently used file past the table bound', () => {
    const f = new FileRanges(3);
    for (let i = 0; i < 5; i++) f.add(i * 1000, i * 1000 + 10, i * 1000 + 20);
    expect(f.ranges.map((r) => r.lo)).toEqual([2000, 3000, 4000]);
    let evicted = 0;
    const t = new IdentityRanges(2, () => evicted++);
    t.add('c', 'f1', 0, 10, 20);
    t.add('c', 'f2', 0, 10, 20);
    t.get('c', 'f1'); // f1 used: f2 is the oldest
    t.add('c', 'f3', 0, 10, 20);
    expect(evicted).toBe(1);
    expect(t.get('c', 'f2')).toBeUndefined();
    expect(t.get('c', 'f1')?.has(10)).toBe(true);
  });

  it('a new generation of a file (new file_id after truncation) starting at offset 0 is not a replay', () => {
    const t = new IdentityRanges(10);
    t.add('c', 'gen-1', 0, 5000, 5010);
    expect(t.get('c', 'gen-1')?.has(0)).toBe(true);
    expect(t.get('c', 'gen-2')?.has(0)).toBeUndefined();
  });

  it('reads the runs of an EntryBatch without decoding it; a non-ascending offset starts a new run', () => {
    const lines = [0, 10, 20].map((offset) => ({ data: Buffer.from('123456789'), offset, fileId: 'a' }));
    const b = buildEntries([...lines, { data: Buffer.from('x'), offset: 0, fileId: 'b' }, { data: Buffer.from('y'), offset: 5, fileId: 'a' }], { collectorId: 'col' });
    const { collectorId, runs } = identityRuns(b.entries);
    expect(collectorId).toBe('col');
    expect(runs).toEqual([
      { fileId: 'a', lo: 0, hi: 20, next: 30, count: 3 },
      { fileId: 'b', lo: 0, hi: 0, next: 2, count: 1 },
      { fileId: 'a', lo: 5, hi: 5, next: 7, count: 1 },
    ]);
  });

  it('the admission scan finds the same runs as identityRuns, on any batch (property)', () => {
    const scanned = (buf: Buffer) => {
      const observer = new IdentityCollector();
      scanEntryBatch(buf, { maxLineBytes: 1 << 20 }, observer);
      return observer.result();
    };
    fc.assert(
      fc.property(
        fc.array(fc.record({ len: fc.nat(20), offset: fc.option(fc.nat(400), { nil: undefined }), file: fc.constantFrom('a', 'b', 'c'), path: fc.constantFrom('/x', '/y') }), { maxLength: 30 }),
        fc.string({ maxLength: 5 }),
        (lines, collectorId) => {
          const b = buildEntries(
            lines.map((l) => ({ data: Buffer.alloc(l.len, 0x61), fileId: l.file, path: l.path, ...(l.offset === undefined ? {} : { offset: l.offset }) })),
            { collectorId },
          );
          expect(scanned(b.entries)).toEqual(identityRuns(b.entries));
        },
      ),
      { seed: 11, numRuns: 300 },
    );
    // A run whose file_id comes after its lines, with flags, and a run without lines.
    const line = (data: string, offset: number, flags: number) => {
      const d = Buffer.from(data);
      return Buffer.concat([Buffer.from([0x0a, d.length]), d, Buffer.from([0x10, offset, 0x20, flags])]);
    };
    const len = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag, body.length]), body]);
    const run1 = Buffer.concat([len(0x1a, line('abc', 4, LineFlag.Partial)), len(0x1a, line('de', 7, 0)), len(0x12, Buffer.from('late-id'))]);
    const buf = Buffer.concat([len(0x0a, Buffer.from('c')), len(0x1a, run1), len(0x1a, len(0x12, Buffer.from('empty'))), len(0x0a, Buffer.from('last'))]);
    expect(scanned(buf)).toEqual(identityRuns(buf));
    expect(identityRuns(buf)).toEqual({ collectorId: 'last', runs: [{ fileId: 'late-id', lo: 4, hi: 7, next: 10, count: 2 }] });
  });
});

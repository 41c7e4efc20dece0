import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineCutter } from '../../src/collector/line-cutter.js';
import { LineFlag } from '../../src/wire/entry-batch.js';

interface Cut {
  text: string;
  flags: number;
  next: number;
}

function cut(cutter: LineCutter, input: string | Buffer, from = 0, flushEntry = false, flushPartial = false): { entries: Cut[]; consumed: number } {
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  const entries: Cut[] = [];
  const consumed = cutter.cut(buf, from, { entry: (s, e, next, flags) => entries.push({ text: buf.toString('utf8', s, e), flags, next }) }, flushEntry, flushPartial);
  return { entries, consumed };
}

describe('LineCutter', () => {
  it('cuts on \\n, strips one trailing \\r, keeps empty lines and holds an unterminated tail', () => {
    const c = new LineCutter({ maxLineBytes: 100 });
    const { entries, consumed } = cut(c, 'a\r\n\nb\r\r\nhalf');
    expect(entries.map((e) => e.text)).toEqual(['a', '', 'b\r']);
    expect(entries.every((e) => e.flags === 0)).toBe(true);
    expect(consumed).toBe('a\r\n\nb\r\r\n'.length);
  });

  it('flushes a held final line only when told, flagged NoNewline', () => {
    const c = new LineCutter({ maxLineBytes: 100 });
    expect(cut(c, 'x\ntail').consumed).toBe(2);
    const flushed = cut(c, 'x\ntail', 2, false, true);
    expect(flushed.entries).toEqual([{ text: 'tail', flags: LineFlag.NoNewline, next: 6 }]);
    expect(flushed.consumed).toBe(6);
  });

  it('splits a line longer than the limit into flagged pieces and counts them', () => {
    const c = new LineCutter({ maxLineBytes: 4 });
    const { entries, consumed } = cut(c, 'abcdefghij\nok\n');
    expect(entries).toEqual([
      { text: 'abcd', flags: LineFlag.Partial, next: 4 },
      { text: 'efgh', flags: LineFlag.Partial, next: 8 },
      { text: 'ij', flags: LineFlag.PartialLast, next: 11 },
      { text: 'ok', flags: 0, next: 14 },
    ]);
    expect(consumed).toBe(14);
    expect(c.splitPieces).toBe(2);
  });

  it('a line of exactly the limit followed by \\r\\n is not split, even when the \\n is not read yet', () => {
    const c = new LineCutter({ maxLineBytes: 4 });
    expect(cut(c, 'abcd\r').entries).toEqual([]);
    expect(cut(c, 'abcd\r\n').entries).toEqual([{ text: 'abcd', flags: 0, next: 6 }]);
  });

  it('continues a long line across reads: pieces emitted before the newline arrives', () => {
    const c = new LineCutter({ maxLineBytes: 3 });
    const first = cut(c, 'abcdefgh');
    expect(first.entries.map((e) => [e.text, e.flags])).toEqual([
      ['abc', LineFlag.Partial],
      ['def', LineFlag.Partial],
    ]);
    const second = cut(c, 'gh\n');
    expect(second.entries).toEqual([{ text: 'gh', flags: LineFlag.PartialLast, next: 3 }]);
  });

  it('joins continuation lines to the entry before them and holds the last entry until flushed', () => {
    const c = new LineCutter({ maxLineBytes: 1000, multilineStartPattern: /^\d{4}-/ });
    const text = '2024-01 boom\n  at a\n  at b\n2024-02 ok\n2024-03 pending\n  at c\n';
    const held = cut(c, text);
    expect(held.entries.map((e) => [e.text, e.flags])).toEqual([
      ['2024-01 boom\n  at a\n  at b', LineFlag.Multiline],
      ['2024-02 ok', 0],
    ]);
    expect(held.consumed).toBe(text.indexOf('2024-03'));
    const flushed = cut(c, text, held.consumed, true);
    expect(flushed.entries.map((e) => e.text)).toEqual(['2024-03 pending\n  at c']);
    expect(flushed.consumed).toBe(text.length);
  });

  it('caps a multiline entry at the line limit: the next line starts a new entry', () => {
    const c = new LineCutter({ maxLineBytes: 10, multilineStartPattern: /^S/ });
    const { entries } = cut(c, 'S1234\n 678\n 9ab\nS\n');
    expect(entries.map((e) => e.text)).toEqual(['S1234\n 678', ' 9ab']);
  });

  it('with a start pattern, an over-long line first completes the pending entry, and its last piece joins nothing', () => {
    const c = new LineCutter({ maxLineBytes: 6, multilineStartPattern: /^S/ });
    const text = 'S1\n c\nSabcdefgh\n x\nS2';
    const held = cut(c, text);
    expect(held.entries.map((e) => [e.text, e.flags])).toEqual([
      ['S1\n c', LineFlag.Multiline],
      ['Sabcde', LineFlag.Partial],
      ['fgh', LineFlag.PartialLast],
    ]);
    // ' x' may still gain continuation lines: held, unconsumed, until the final line is flushed.
    expect(held.consumed).toBe(text.indexOf(' x'));
    const flushed = cut(c, text, held.consumed, false, true);
    expect(flushed.entries).toEqual([
      { text: ' x', flags: 0, next: text.indexOf('S2') },
      { text: 'S2', flags: LineFlag.NoNewline, next: text.length },
    ]);
    expect(c.splitPieces).toBe(1);
  });

  it('property: cutting in arbitrary read sizes yields exactly the lines of the text', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom('a', 'b', '\r', 'é') , maxLength: 30 }), { maxLength: 30 }), fc.integer({ min: 1, max: 50 }), (lines, step) => {
        const clean = lines.map((l) => l.replace(/\r+$/, ''));
        const file = Buffer.from(clean.map((l) => `${l}\n`).join(''));
        const c = new LineCutter({ maxLineBytes: 1000 });
        const got: string[] = [];
        let offset = 0;
        let end = 0;
        while (offset < file.length) {
          end = Math.min(file.length, end + step);
          const view = file.subarray(offset, end);
          const consumed = c.cut(view, 0, { entry: (s, e) => got.push(view.toString('utf8', s, e)) });
          offset += consumed;
          if (end === file.length && consumed === 0) break;
        }
        expect(got).toEqual(clean);
      }),
    );
  });
});

describe('a line limit that changes (the aggregator advertised a smaller one)', () => {
  it('splits at the limit read at each cut, into PARTIAL pieces ending with PARTIAL_LAST', () => {
    let max = 100;
    const c = new LineCutter({
      get maxLineBytes(): number {
        return max;
      },
    });
    const got: Array<[string, number]> = [];
    const buf = Buffer.from('0123456789abc\nshort\n');
    const out = { entry: (s: number, e: number, _n: number, f: number) => got.push([buf.toString('latin1', s, e), f]) };
    max = 5;
    expect(c.cut(buf, 0, out)).toBe(buf.length);
    expect(got).toEqual([
      ['01234', LineFlag.Partial],
      ['56789', LineFlag.Partial],
      ['abc', LineFlag.PartialLast],
      ['short', 0],
    ]);
  });
});

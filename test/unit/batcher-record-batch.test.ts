import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrayBatch } from '../../src/emitters/array-batch.js';
import { ReusedBuffer, rawLines } from '../../src/emitters/raw-lines.js';
import { RecordBatch } from '../../src/emitters/record-batch.js';
import type { RecordView } from '../../src/emitters/record-batch.js';
import { EntryBatchWriter, RunHead, decodeEntries, encodeBatchHeader, lineSpans } from '../../src/wire/entry-batch.js';
import { LineTime } from '../../src/wire/line-time.js';

/** One record (EntryBatch) of the given lines, alternating between two files so it holds several runs. */
function record(collectorId: string, lines: readonly Uint8Array[], firstOffset = 0): Buffer {
  const w = new EntryBatchWriter(encodeBatchHeader(collectorId, [{ key: 'k', value: collectorId }]), 8);
  const heads = [new RunHead('/a.log', 'a'), new RunHead('/b.log', 'b')];
  lines.forEach((l, i) => w.addLine(heads[Math.floor(i / 3) % 2] as RunHead, Buffer.from(l), 0, l.length, firstOffset + i, BigInt(i)));
  return w.finish();
}

const hex = (b: Buffer): string => b.toString('hex');

describe('RecordBatch (a batch as views over spool records)', () => {
  it('lines() are the entries() lines byte for byte, for any records and entry ranges (property)', () => {
    const arbRecord = fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 12 });
    // One buffer reused across all runs (as the file emitter does): what an earlier batch left in it
    // never shows through.
    const reused = new ReusedBuffer(1 << 20);
    fc.assert(
      fc.property(fc.array(fc.tuple(arbRecord, fc.nat(), fc.nat(), fc.boolean()), { minLength: 1, maxLength: 5 }), (specs) => {
        const views: RecordView[] = specs.map(([lines, a, b, handOver], r) => {
          const from = lines.length === 0 ? 0 : a % (lines.length + 1);
          const to = from + (lines.length === 0 ? 0 : b % (lines.length - from + 1));
          const data = record(`c-${r}`, lines, r * 100);
          // As the batcher cuts them (spans of the whole record handed over), or walked here.
          return handOver ? { data, from, to, spans: lineSpans(data) } : { data, from, to };
        });
        const batch = new RecordBatch(7, views);
        const expected = views.flatMap((v) => decodeEntries(v.data).slice(v.from, v.to));
        expect(batch.count).toBe(expected.length);
        expect([...batch.lines()].map(hex)).toEqual(expected.map((e) => hex(e.line)));
        // The raw format copies straight from the records: the same bytes as through decoded entries.
        expect(hex(rawLines(batch))).toBe(hex(rawLines(arrayBatch(1, expected))));
        expect(hex(rawLines(batch, reused.take))).toBe(hex(rawLines(arrayBatch(1, expected))));
        expect(hex(rawLines(arrayBatch(1, expected), reused.take))).toBe(hex(rawLines(batch)));
        expect(batch.entries().map((e) => [hex(e.line), e.offset, e.timeUnixNano, e.source, e.tags])).toEqual(
          expected.map((e) => [hex(e.line), e.offset, e.timeUnixNano, e.source, e.tags]),
        );
      }),
      { seed: 42, numRuns: 150 },
    );
  });

  it('joinLines and lines() handle Lines without a data field (empty) and with it repeated (the last wins), at any place (property)', () => {
    const field = (tag: number, body: Buffer): Buffer =>
      Buffer.concat([Buffer.from(body.length < 0x80 ? [tag, body.length] : [tag, (body.length & 0x7f) | 0x80, body.length >> 7]), body]);
    // 0: no data field; 1: one; 2: two (the second counts).
    const arbLine = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.uint8Array({ maxLength: 12 }), fc.uint8Array({ maxLength: 12 }));
    fc.assert(
      fc.property(fc.array(fc.array(arbLine, { maxLength: 8 }), { minLength: 1, maxLength: 4 }), fc.nat(), (records, cut) => {
        const views: RecordView[] = records.map((lines) => {
          const bodies = lines.map(([shape, a, b]) => {
            const offset = Buffer.from([0x10, 0x07]);
            if (shape === 0) return field(0x1a, offset);
            if (shape === 1) return field(0x1a, Buffer.concat([offset, field(0x0a, Buffer.from(a))]));
            return field(0x1a, Buffer.concat([field(0x0a, Buffer.from(a)), offset, field(0x0a, Buffer.from(b))]));
          });
          const data = Buffer.concat([field(0x0a, Buffer.from('c')), field(0x1a, Buffer.concat([field(0x0a, Buffer.from('/p')), ...bodies]))]);
          const from = cut % (lines.length + 1);
          return { data, from, to: lines.length, spans: lineSpans(data) };
        });
        const expected = views.flatMap((v) => decodeEntries(v.data).slice(v.from, v.to));
        const batch = new RecordBatch(3, views);
        expect([...batch.lines()].map(hex)).toEqual(expected.map((e) => hex(e.line)));
        expect(hex(rawLines(batch))).toBe(hex(Buffer.concat(expected.flatMap((e) => [e.line, Buffer.from('\n')]))));
      }),
      { seed: 5, numRuns: 500 },
    );
  });

  it('joinLines copies the lines of a LineBlock in one piece, nothing moved: the bytes of decoded entries (property)', () => {
    const arbText = fc.array(fc.string({ maxLength: 20 }).map((t) => t.replace(/[\r\n]/g, '')), { minLength: 2, maxLength: 30 });
    fc.assert(
      fc.property(fc.array(fc.tuple(arbText, fc.nat(), fc.nat()), { minLength: 1, maxLength: 3 }), (specs) => {
        const views: RecordView[] = specs.map(([lines, a, b], r) => {
          const text = Buffer.from(lines.map((l) => `${l}\n`).join(''));
          const w = new EntryBatchWriter(encodeBatchHeader(`c-${r}`, []), { lineBlocks: true });
          const head = new RunHead('/a.log', 'a');
          for (let pos = 0; pos < text.length; ) {
            const nl = text.indexOf(0x0a, pos);
            w.append(head, text, pos, nl, pos, LineTime.fromMillis(1));
            pos = nl + 1;
          }
          const data = w.finish();
          const from = a % lines.length;
          const to = from + 1 + (b % (lines.length - from));
          return { data, from, to, spans: lineSpans(data) };
        });
        const expected = views.flatMap((v) => decodeEntries(v.data).slice(v.from, v.to));
        // Two lines or more make a LineBlock. A buffer that refuses copyWithin: they go out as they lie, none moved.
        const unmoved = (n: number): Buffer => {
          const out = Buffer.alloc(n);
          out.copyWithin = () => {
            throw new Error('a line was moved');
          };
          return out;
        };
        expect(hex(rawLines(new RecordBatch(1, views), unmoved))).toBe(hex(Buffer.concat(expected.flatMap((e) => [e.line, Buffer.from('\n')]))));
      }),
      { seed: 11, numRuns: 300 },
    );
  });

  it('ReusedBuffer hands out one buffer while it is large enough, grows up to its bound, and gives larger asks their own', () => {
    const r = new ReusedBuffer(100);
    const a = r.take(10);
    expect(a.length).toBeGreaterThanOrEqual(10);
    expect(r.take(5)).toBe(a);
    const b = r.take(a.length + 1);
    expect(b).not.toBe(a);
    expect(b.length).toBeLessThanOrEqual(100);
    expect(r.take(100)).toBe(r.take(1));
    const big = r.take(101);
    expect(big.length).toBe(101);
    expect(r.take(50)).not.toBe(big);
  });

  it('a batch that starts inside one record and spans several keeps entry order, sources and tags', () => {
    const first = record('c-1', ['l0', 'l1', 'l2', 'l3', 'l4'].map((s) => Buffer.from(s)));
    const second = record('c-2', ['m0', 'm1'].map((s) => Buffer.from(s)), 50);
    const third = record('c-3', ['n0', 'n1', 'n2'].map((s) => Buffer.from(s)), 90);
    // As the batcher cuts it after a restart at entry 3 of the first record, ending inside the third.
    const batch = new RecordBatch(1, [
      { data: first, from: 3, to: 5 },
      { data: second, from: 0, to: 2 },
      { data: third, from: 0, to: 1 },
    ]);
    expect(batch.count).toBe(5);
    expect([...batch.lines()].map((l) => l.toString())).toEqual(['l3', 'l4', 'm0', 'm1', 'n0']);
    expect(batch.entries().map((e) => [e.line.toString(), e.offset, e.source.collectorId, e.source.path, e.tags[0]?.value])).toEqual([
      ['l3', 3, 'c-1', '/b.log', 'c-1'],
      ['l4', 4, 'c-1', '/b.log', 'c-1'],
      ['m0', 50, 'c-2', '/a.log', 'c-2'],
      ['m1', 51, 'c-2', '/a.log', 'c-2'],
      ['n0', 90, 'c-3', '/a.log', 'c-3'],
    ]);
  });

  it('lines() are views into the records (no copies), and entries() is decoded once and kept', () => {
    const data = record('c', [Buffer.from('one'), Buffer.from('two')]);
    const batch = new RecordBatch(1, [{ data, from: 0, to: 2 }]);
    for (const line of batch.lines()) expect(line.buffer).toBe(data.buffer);
    expect(batch.entries()).toBe(batch.entries());
    expect(batch.entries()[1]?.line.buffer).toBe(data.buffer);
  });

  it('an empty range and an empty batch hold nothing', () => {
    const data = record('c', [Buffer.from('x')]);
    const batch = new RecordBatch(1, [{ data, from: 1, to: 1 }]);
    expect(batch.count).toBe(0);
    expect([...batch.lines()]).toEqual([]);
    expect(batch.entries()).toEqual([]);
    expect(new RecordBatch(2, []).count).toBe(0);
  });
});

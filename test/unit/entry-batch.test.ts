import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import {
  EntryBatchWriter,
  LineFlag,
  RunHead,
  countEntries,
  decodeEntries,
  encodeBatchHeader,
  encodeEntries,
  entryLines,
  lineSpans,
  scanEntryBatch,
} from '../../src/wire/entry-batch.js';
import { EntryBatchWalker, Met } from '../../src/wire/entry-batch-walker.js';
import type { Entry } from '../../src/wire/entry-batch.js';
import { fitEntryBatch, partitionOversized } from '../../src/wire/entry-batch-fit.js';
import { WireError } from '../../src/wire/varint.js';
import { findApiProto } from '../../src/wire/grpc-api.js';

const limits = { maxLineBytes: 1 << 20 };

describe('EntryBatch encoding', () => {
  it('round-trips lines byte for byte, including invalid UTF-8 and empty lines', () => {
    const w = new EntryBatchWriter(encodeBatchHeader('c-1', [{ key: 'host', value: 'h' }]), 16);
    const a = new RunHead('/var/log/a.log', 'dev:1:ino:2:fp:abc');
    const b = new RunHead('/var/log/b.log', 'dev:1:ino:3:fp:def');
    const bad = Buffer.from([0xff, 0xfe, 0x00, 0x41, 0xc3]);
    const src = Buffer.concat([Buffer.from('hello\n'), bad, Buffer.from('\n\n')]);
    w.addLine(a, src, 0, 5, 0, 1n, 0);
    w.addLine(b, src, 6, 11, 1_000_000_000_000, 2n ** 63n, LineFlag.Partial);
    w.addLine(a, src, 12, 12, 6, 3n, 0);
    expect(w.entryCount).toBe(3);
    const buf = w.finish();
    expect(w.entryCount).toBe(0);
    expect(scanEntryBatch(buf, limits)).toEqual({ entryCount: 3, lineBytes: 10, oversizedLines: 0, longestLine: 5 });
    const entries = decodeEntries(buf);
    expect(entries.map((e) => [e.line.toString('hex'), e.offset, e.timeUnixNano, e.flags, e.source.path])).toEqual([
      ['68656c6c6f', 0, 1n, 0, '/var/log/a.log'],
      [bad.toString('hex'), 1_000_000_000_000, 2n ** 63n, LineFlag.Partial, '/var/log/b.log'],
      ['', 6, 3n, 0, '/var/log/a.log'],
    ]);
    expect(entries[0]?.tags).toEqual([{ key: 'host', value: 'h' }]);
    expect(entries[0]?.source.collectorId).toBe('c-1');
  });

  it('is real protobuf: protobufjs decodes what the writer wrote', () => {
    const root = protobuf.loadSync(findApiProto());
    const EntryBatch = root.lookupType('megacollector.v1.EntryBatch');
    const w = new EntryBatchWriter(encodeBatchHeader('col', [{ key: 'k', value: 'v' }]));
    const head = new RunHead('/p', 'id');
    const src = Buffer.from('abc');
    w.addLine(head, src, 0, 3, 42, 7n, LineFlag.NoNewline);
    const decoded = EntryBatch.toObject(EntryBatch.decode(w.finish()), { longs: String, bytes: String }) as Record<string, unknown>;
    expect(decoded).toEqual({
      collectorId: 'col',
      tags: [{ key: 'k', value: 'v' }],
      runs: [{ path: '/p', fileId: 'id', lines: [{ data: 'YWJj', offset: '42', timeUnixNano: '7', flags: 8 }] }],
    });
  });

  it('skips unknown fields written by a newer collector', () => {
    const w = new EntryBatchWriter(encodeBatchHeader('c', []));
    w.addLine(new RunHead('/p', 'f'), Buffer.from('x'), 0, 1, 0, 0n);
    // Field 15, varint 1, and field 16 length-delimited "zz" appended at the top level.
    const buf = Buffer.concat([w.finish(), Buffer.from([0x78, 0x01, 0x82, 0x01, 0x02, 0x7a, 0x7a])]);
    expect(scanEntryBatch(buf, limits).entryCount).toBe(1);
    expect(decodeEntries(buf)[0]?.line.toString()).toBe('x');
  });

  it('rejects truncated and oversized input with a WireError, never another exception', () => {
    const w = new EntryBatchWriter(encodeBatchHeader('c', []));
    w.addLine(new RunHead('/p', 'f'), Buffer.alloc(100, 0x61), 0, 100, 0, 0n);
    const buf = w.finish();
    const headerLength = 3; // collector_id "c": a valid EntryBatch on its own
    for (let cut = 1; cut < buf.length; cut++) {
      if (cut === headerLength) continue;
      expect(() => scanEntryBatch(buf.subarray(0, cut), limits)).toThrow();
    }
    expect(scanEntryBatch(buf, { maxLineBytes: 99 })).toMatchObject({ entryCount: 1, oversizedLines: 1, longestLine: 100 });
    expect(() => scanEntryBatch(buf, { maxLineBytes: 100, maxEntries: 0 })).toThrow(/more than 0 entries/);
  });

  it('never throws anything but WireError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          scanEntryBatch(Buffer.from(bytes), limits);
        } catch (err) {
          expect(err).toBeInstanceOf(WireError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips arbitrary lines (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ data: fc.uint8Array({ maxLength: 300 }), file: fc.integer({ min: 0, max: 2 }), offset: fc.maxSafeNat() }), {
          maxLength: 50,
        }),
        (lines) => {
          const heads = [new RunHead('/a', '1'), new RunHead('/b', '2'), new RunHead('/c', '3')];
          const w = new EntryBatchWriter(encodeBatchHeader('c', []), 8);
          for (const l of lines) w.addLine(heads[l.file] as RunHead, Buffer.from(l.data), 0, l.data.length, l.offset, 5n);
          const buf = w.finish();
          expect(scanEntryBatch(buf, limits).entryCount).toBe(lines.length);
          const out = decodeEntries(buf);
          expect(out.map((e) => [Buffer.from(e.line).toString('hex'), e.offset, e.source.fileId])).toEqual(
            lines.map((l) => [Buffer.from(l.data).toString('hex'), l.offset, String(l.file + 1)]),
          );
          const again = encodeEntries(out);
          expect(again.flatMap((b) => decodeEntries(b)).map((e) => e.line.toString('hex'))).toEqual(out.map((e) => e.line.toString('hex')));
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Rejoins split lines: consecutive pieces of one file with contiguous offsets, up to PARTIAL_LAST. */
function rejoin(entries: readonly Entry[]): Array<{ offset: number; data: string; flags: number }> {
  const out: Array<{ offset: number; data: string; flags: number }> = [];
  let open: { offset: number; data: string; flags: number; next: number } | undefined;
  for (const e of entries) {
    if (open !== undefined) {
      if (e.offset !== open.next) throw new Error(`piece at ${e.offset}, expected ${open.next}`);
      open.data += e.line.toString('latin1');
      open.next += e.line.length;
      if ((e.flags & LineFlag.Partial) === 0) {
        out.push({ offset: open.offset, data: open.data, flags: e.flags & ~LineFlag.PartialLast });
        open = undefined;
      }
    } else if ((e.flags & LineFlag.Partial) !== 0) {
      open = { offset: e.offset, data: e.line.toString('latin1'), flags: 0, next: e.offset + e.line.length };
    } else out.push({ offset: e.offset, data: e.line.toString('latin1'), flags: e.flags & ~LineFlag.PartialLast });
  }
  expect(open).toBeUndefined();
  return out;
}

describe('fitting a batch to smaller limits', () => {
  it('writer size estimates are upper bounds of what finish() returns (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ len: fc.nat(3000), file: fc.integer({ min: 0, max: 2 }), offset: fc.maxSafeNat() }), { maxLength: 40 }), (lines) => {
        const heads = [new RunHead('/a', '1'), new RunHead('/bb/'.repeat(50), '2'), new RunHead('/c', '3'.repeat(300))];
        const w = new EntryBatchWriter(encodeBatchHeader('c', [{ key: 'k', value: 'v' }]), 8);
        let bound = 0;
        for (const l of lines) {
          const head = heads[l.file] as RunHead;
          bound = w.byteLengthWith(head, l.len, l.offset);
          w.addLine(head, Buffer.alloc(l.len), 0, l.len, l.offset, 1n, LineFlag.PartialLast | LineFlag.NoNewline);
          expect(w.byteLength).toBeLessThanOrEqual(bound);
        }
        const estimate = w.byteLength;
        expect(w.finish().length).toBeLessThanOrEqual(lines.length === 0 ? Infinity : estimate);
      }),
      { numRuns: 300 },
    );
  });

  it('splits long lines into flagged pieces and cuts batches within every limit, losing no byte (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ len: fc.nat(5000), file: fc.integer({ min: 0, max: 1 }), flags: fc.constantFrom(0, LineFlag.NoNewline, LineFlag.Multiline) }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 7, max: 2048 }),
        fc.integer({ min: 1, max: 20 }),
        (lines, maxLine, maxEntries) => {
          const heads = [new RunHead('/a', '1'), new RunHead('/b', '2')];
          const w = new EntryBatchWriter(encodeBatchHeader('c', [{ key: 'host', value: 'h' }]));
          const offsets = [0, 0];
          const want: Array<Array<{ offset: number; data: string; flags: number }>> = [[], []];
          for (const [n, l] of lines.entries()) {
            const data = Buffer.alloc(l.len, `${n}:0123456789abcdef;`);
            const off = offsets[l.file] as number;
            w.addLine(heads[l.file] as RunHead, data, 0, l.len, off, 9n, l.flags);
            want[l.file]?.push({ offset: off, data: data.toString('latin1'), flags: l.flags });
            offsets[l.file] = off + l.len + 1;
          }
          const maxChunk = 300 + maxLine;
          const fitted = fitEntryBatch(w.finish(), { maxChunkBytes: maxChunk, maxLineBytes: maxLine, maxEntriesPerChunk: maxEntries });
          const all: Entry[] = [];
          for (const f of fitted) {
            const scanned = scanEntryBatch(f.payload, { maxLineBytes: maxLine });
            const fits = f.payload.length <= maxChunk && scanned.oversizedLines === 0 && scanned.entryCount === f.entryCount && f.entryCount <= maxEntries;
            if (!fits) expect({ bytes: f.payload.length, scanned, entryCount: f.entryCount }).toEqual({ within: { maxChunk, maxLine, maxEntries } });
            all.push(...decodeEntries(f.payload));
          }
          for (const file of [0, 1]) expect(rejoin(all.filter((e) => e.source.fileId === String(file + 1)))).toEqual(want[file]);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a piece of a longer line stays a non-final piece when cut again', () => {
    const w = new EntryBatchWriter(encodeBatchHeader('c', []));
    const head = new RunHead('/a', '1');
    w.addLine(head, Buffer.from('abcdefgh'), 0, 8, 100, 1n, LineFlag.Partial);
    w.addLine(head, Buffer.from('ijk'), 0, 3, 108, 1n, LineFlag.PartialLast | LineFlag.NoNewline);
    const [fitted] = fitEntryBatch(w.finish(), { maxChunkBytes: 1 << 20, maxLineBytes: 3, maxEntriesPerChunk: 100 });
    const out = decodeEntries((fitted as { payload: Buffer }).payload);
    expect(out.map((e) => [e.line.toString(), e.offset, e.flags])).toEqual([
      ['abc', 100, LineFlag.Partial],
      ['def', 103, LineFlag.Partial],
      ['gh', 106, LineFlag.Partial],
      ['ijk', 108, LineFlag.PartialLast | LineFlag.NoNewline],
    ]);
  });

  it('partitions the lines over a limit from the rest, keeping order and tags', () => {
    const w = new EntryBatchWriter(encodeBatchHeader('c', [{ key: 'k', value: 'v' }]));
    const head = new RunHead('/a', '1');
    for (const [i, len] of [5, 50, 6, 70].entries()) w.addLine(head, Buffer.alloc(len, 0x61 + i), 0, len, i * 100, 1n);
    const p = partitionOversized(w.finish(), 10);
    expect([p.keptCount, p.oversizedCount]).toEqual([2, 2]);
    expect(decodeEntries(p.kept as Buffer).map((e) => [e.line.length, e.offset, e.tags])).toEqual([
      [5, 0, [{ key: 'k', value: 'v' }]],
      [6, 200, [{ key: 'k', value: 'v' }]],
    ]);
    expect(decodeEntries(p.oversized as Buffer).map((e) => [e.line.length, e.offset])).toEqual([
      [50, 100],
      [70, 300],
    ]);
  });
});

/** Protobuf bytes by hand: a tag byte and a length-delimited body (all lengths here are < 128). */
function field(tag: number, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([Buffer.from([tag, b.length]), b]);
}

describe('the one EntryBatch walker (scan, count, decode and lines share it)', () => {
  it('meets the fields in byte order, skipping unknown ones', () => {
    const w = new EntryBatchWriter(encodeBatchHeader('c', [{ key: 'k', value: 'v' }]));
    w.addLine(new RunHead('/p', 'f'), Buffer.from('ab'), 0, 2, 7, 9n, LineFlag.Partial);
    const buf = Buffer.concat([w.finish(), Buffer.from([0x78, 0x01])]);
    const walker = new EntryBatchWalker(buf);
    const met: Array<[number, string]> = [];
    for (let m = walker.next(); m !== Met.End; m = walker.next()) {
      if (m === Met.Line) {
        walker.readLine();
        met.push([m, `${buf.toString('utf8', walker.dataStart, walker.dataEnd)}@${walker.offset}/${walker.time}/${walker.flags}`]);
      } else met.push([m, m === Met.Tag || m === Met.Run ? '' : walker.text()]);
    }
    expect(met).toEqual([
      [Met.CollectorId, 'c'],
      [Met.Tag, ''],
      [Met.TagKey, 'k'],
      [Met.TagValue, 'v'],
      [Met.Run, ''],
      [Met.Path, '/p'],
      [Met.FileId, 'f'],
      [Met.Line, `ab@7/9/${LineFlag.Partial}`],
    ]);
  });

  it('count, scan, decode and lines agree on any batch, and on any range of it (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ data: fc.uint8Array({ maxLength: 60 }), file: fc.integer({ min: 0, max: 2 }) }), { maxLength: 40 }),
        fc.nat(),
        fc.nat(),
        (lines, a, b) => {
          const heads = [new RunHead('/a', '1'), new RunHead('/b', '2'), new RunHead('/c', '3')];
          const w = new EntryBatchWriter(encodeBatchHeader('c', [{ key: 'x', value: 'y' }]), 8);
          lines.forEach((l, i) => w.addLine(heads[l.file] as RunHead, Buffer.from(l.data), 0, l.data.length, i, BigInt(i)));
          const buf = w.finish();
          const all = decodeEntries(buf);
          expect(countEntries(buf)).toBe(lines.length);
          expect(spanned(buf, lineSpans(buf, a % 5))).toEqual(all.map((e) => e.line.toString('hex')));
          expect(scanEntryBatch(buf, limits).entryCount).toBe(lines.length);
          expect(scanEntryBatch(buf, { ...limits, spans: true }).spans).toEqual(lineSpans(buf));
          expect(scanEntryBatch(buf, limits).spans).toBeUndefined();
          expect([...entryLines(buf)].map((l) => l.toString('hex'))).toEqual(all.map((e) => e.line.toString('hex')));
          const from = a % (lines.length + 1);
          const to = from + (b % (lines.length - from + 1));
          expect([...entryLines(buf, from, to)].map((l) => l.toString('hex'))).toEqual(all.slice(from, to).map((e) => e.line.toString('hex')));
          expect(decodeEntries(buf, [], from, to)).toEqual(all.slice(from, to));
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });

  it('countEntries throws exactly where decodeEntries throws, on any bytes (property)', () => {
    const valid = buildValid();
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 0, max: valid.length }).map((cut) => valid.subarray(0, cut))), (bytes) => {
        const buf = Buffer.from(bytes);
        let decoded: number | string;
        try {
          decoded = decodeEntries(buf).length;
        } catch (err) {
          expect(err).toBeInstanceOf(WireError);
          decoded = 'throws';
        }
        let counted: number | string;
        try {
          counted = countEntries(buf);
        } catch (err) {
          expect(err).toBeInstanceOf(WireError);
          counted = 'throws';
        }
        expect(counted).toEqual(decoded);
      }),
      { seed: 11, numRuns: 2000 },
    );
  });

  it('lineSpans and countEntries accept, reject and read exactly what decodeEntries does, for Lines of any field shape (property)', () => {
    // Line bodies made of field pieces, well-formed or not: data (also repeated or absent), offset
    // varints of 1 to 11 bytes (past 2^53, too long, cut short), time (whole or cut), flags, unknown
    // fields, stray bytes; so the fast path of the line walk meets every way out of it.
    const varint = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 11 }).map((bytes) => bytes.map((b, i) => (i === bytes.length - 1 ? b & 0x7f : b | 0x80)));
    const piece = fc.oneof(
      fc.uint8Array({ maxLength: 20 }).map((d) => [0x0a, d.length, ...d]),
      fc.tuple(fc.uint8Array({ maxLength: 20 }), fc.integer({ min: 0, max: 40 })).map(([d, len]) => [0x0a, len, ...d]),
      varint.map((v) => [0x10, ...v]),
      fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 8 }).map((t) => [0x19, ...t]),
      fc.constant([0x19, 1, 2, 3, 4, 5, 6, 7, 8]),
      varint.map((v) => [0x20, ...v]),
      fc.constant([0x28, 0x01]),
      fc.constant([0x32, 0x02, 0x61, 0x62]),
      fc.constant([0x8a, 0x00, 0x00]),
      fc.integer({ min: 0, max: 255 }).map((b) => [b]),
    );
    const lineBody = fc.array(piece, { maxLength: 5 }).map((ps) => Buffer.from(ps.flat()));
    fc.assert(
      fc.property(fc.array(lineBody, { maxLength: 6 }), (bodies) => {
        const run = Buffer.concat([field(0x0a, '/p'), ...bodies.map((b) => longField(0x1a, b))]);
        const buf = Buffer.concat([field(0x0a, 'c'), longField(0x1a, run)]);
        let decoded: string[] | string;
        try {
          decoded = decodeEntries(buf).map((e) => e.line.toString('hex'));
        } catch (err) {
          expect(err).toBeInstanceOf(WireError);
          decoded = 'throws';
        }
        let spans: string[] | string;
        try {
          spans = spanned(buf, lineSpans(buf, 1));
        } catch (err) {
          expect(err).toBeInstanceOf(WireError);
          spans = 'throws';
        }
        expect(spans).toEqual(decoded);
        // The admission scan's spans are the batcher's, and the offsets and flags it tells its observer
        // (entry identities) are the decoder's: the same verdict on every shape.
        let scanned: string[] | string;
        const told: Array<[number, number]> = [];
        const observer = { collectorId: () => undefined, run: () => undefined, fileId: () => undefined, line: (offset: number, _n: number, flags: number) => told.push([offset, flags]) };
        try {
          scanned = spanned(buf, scanEntryBatch(buf, { maxLineBytes: 1 << 30, spans: true }, observer).spans as Uint32Array);
        } catch (err) {
          expect(err).toBeInstanceOf(WireError);
          scanned = 'throws';
        }
        expect(scanned).toEqual(decoded);
        if (typeof scanned !== 'string') expect(told).toEqual(decodeEntries(buf).map((e) => [e.offset, e.flags]));
        let counted: number | string;
        try {
          counted = countEntries(buf);
        } catch {
          counted = 'throws';
        }
        expect(counted).toEqual(typeof decoded === 'string' ? decoded : decoded.length);
      }),
      { seed: 23, numRuns: 3000 },
    );
  });

  it('a header after the runs still names every entry, and the last of a repeated field wins everywhere', () => {
    const line = Buffer.concat([field(0x0a, 'long-first'), field(0x0a, 'x'), Buffer.from([0x10, 0x05])]);
    const run = Buffer.concat([field(0x0a, '/old'), field(0x1a, line), field(0x0a, '/new'), field(0x12, 'id')]);
    const buf = Buffer.concat([field(0x1a, run), field(0x0a, 'late-collector'), field(0x12, Buffer.concat([field(0x0a, 'k'), field(0x12, 'v')]))]);
    const [entry] = decodeEntries(buf);
    expect(entry?.line.toString()).toBe('x');
    expect(entry?.offset).toBe(5);
    expect(entry?.source).toEqual({ collectorId: 'late-collector', path: '/new', fileId: 'id' });
    expect(Object.isFrozen(entry?.source)).toBe(true);
    expect(entry?.tags).toEqual([{ key: 'k', value: 'v' }]);
    expect([...entryLines(buf)].map((l) => l.toString())).toEqual(['x']);
    // The scan measures the line as it will be decoded and emitted: its last data field.
    expect(scanEntryBatch(buf, { maxLineBytes: 1 })).toMatchObject({ entryCount: 1, lineBytes: 1, longestLine: 1, oversizedLines: 0 });
  });
});

/** A length-delimited field whose length may need a two-byte varint. */
function longField(tag: number, body: Buffer): Buffer {
  const len = body.length < 0x80 ? [body.length] : [(body.length & 0x7f) | 0x80, body.length >> 7];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

/** The bytes each pair of `spans` names in `buf`, as hex. */
function spanned(buf: Buffer, spans: Uint32Array): string[] {
  const out: string[] = [];
  for (let i = 0; i < spans.length; i += 2) out.push(buf.subarray(spans[i], spans[i + 1]).toString('hex'));
  return out;
}

function buildValid(): Buffer {
  const w = new EntryBatchWriter(encodeBatchHeader('c', [{ key: 'k', value: 'v' }]));
  w.addLine(new RunHead('/p', 'f'), Buffer.from('hello'), 0, 5, 300, 1n, LineFlag.NoNewline);
  w.addLine(new RunHead('/q', 'g'), Buffer.from('world'), 0, 5, 400, 2n);
  return w.finish();
}

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import {
  EntryBatchWriter,
  LineFlag,
  RunHead,
  ScanError,
  countEntries,
  decodeEntries,
  encodeBatchHeader,
  entryLines,
  forEachLine,
  lineSpans,
  scanEntryBatch,
} from '../../src/wire/entry-batch.js';
import { IdentityCollector, identityRuns } from '../../src/wire/entry-identity.js';
import { fitEntryBatch } from '../../src/wire/entry-batch-fit.js';
import { LineTime } from '../../src/wire/line-time.js';
import { findApiProto } from '../../src/wire/grpc-api.js';
import { writeVarint } from '../../src/wire/varint.js';

/**
 * LineBlocks (FileRun.blocks): runs of plain lines written once, as the file holds them. Every reader
 * must see exactly the lines a writer without blocks would have written.
 */

const header = encodeBatchHeader('col', [{ key: 'k', value: 'v' }]);

interface Cut {
  readonly start: number;
  readonly end: number;
  readonly flags: number;
}

/** A tailer's view of `text`: lines cut at \n, a trailing \r stripped, the last without newline flagged. */
function cutLines(buf: Buffer): Cut[] {
  const out: Cut[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl === -1) {
      out.push({ start: pos, end: buf.length, flags: LineFlag.NoNewline });
      break;
    }
    const end = nl > pos && buf[nl - 1] === 0x0d ? nl - 1 : nl;
    out.push({ start: pos, end, flags: 0 });
    pos = nl + 1;
  }
  return out;
}

/** Writes the lines of each (head, buffer) in order, with or without blocks, the time changing per buffer. */
function write(views: ReadonlyArray<{ head: RunHead; buf: Buffer; base: number; ms: number }>, lineBlocks: boolean): Buffer {
  const w = new EntryBatchWriter(header, { lineBlocks, capacity: 64 });
  for (const v of views) {
    const time = LineTime.fromMillis(v.ms);
    for (const c of cutLines(v.buf)) w.append(v.head, v.buf, c.start, c.end, v.base + c.start, time, c.flags);
    w.settle();
  }
  return w.finish();
}

function readAll(buf: Buffer): unknown {
  const scan = scanEntryBatch(buf, { maxLineBytes: 5, spans: true });
  const spans = [...(scan.spans ?? [])].map((x, i, a) => (i % 2 === 0 ? buf.toString('latin1', x, a[i + 1]) : undefined)).filter((x) => x !== undefined);
  const visited: string[] = [];
  forEachLine(buf, 0, Number.POSITIVE_INFINITY, (s, e) => visited.push(buf.toString('latin1', s, e)));
  const observed = new IdentityCollector();
  scanEntryBatch(buf, { maxLineBytes: 5 }, observed);
  return {
    entries: decodeEntries(buf).map((e) => [e.source.path, e.source.fileId, e.line.toString('latin1'), e.offset, e.timeUnixNano, e.flags]),
    scan: { entryCount: scan.entryCount, lineBytes: scan.lineBytes, oversizedLines: scan.oversizedLines, longestLine: scan.longestLine },
    spans,
    lineSpans: [...lineSpans(buf)].map((x, i, a) => (i % 2 === 0 ? buf.toString('latin1', x, a[i + 1]) : undefined)).filter((x) => x !== undefined),
    lines: [...entryLines(buf)].map((b) => b.toString('latin1')),
    visited,
    count: countEntries(buf),
    identities: identityRuns(buf),
    observed: observed.result(),
  };
}

const textArb = fc
  .array(fc.oneof(fc.constantFrom('\n', '\r\n', '\r', 'a', 'xy', 'é'), fc.string({ maxLength: 9 })), { maxLength: 30 })
  .map((parts) => Buffer.from(parts.join(''), 'utf8'));

describe('LineBlocks: runs of plain lines written once', () => {
  it('every reader sees the lines a writer without blocks writes, on any text of any files (property)', () => {
    const heads = [new RunHead('/a', 'ia'), new RunHead('/b', 'ib')];
    fc.assert(
      fc.property(fc.array(fc.record({ file: fc.nat(1), text: textArb, base: fc.nat(1_000_000), ms: fc.constantFrom(1, 2) }), { maxLength: 5 }), (views) => {
        const vs = views.map((v) => ({ head: heads[v.file] as RunHead, buf: v.text, base: v.base, ms: v.ms }));
        const plain = write(vs, false);
        const blocked = write(vs, true);
        expect(readAll(blocked)).toEqual(readAll(plain));
        expect(blocked.length).toBeLessThanOrEqual(plain.length);
      }),
      { numRuns: 400 },
    );
  });

  it('writes a run of two or more plain lines as one LineBlock that protobufjs reads as api.proto says', () => {
    const text = Buffer.from('one\ntwo\r\nthree\nfour\nfive');
    const w = new EntryBatchWriter(header, { lineBlocks: true });
    const head = new RunHead('/a', 'ia');
    for (const c of cutLines(text)) w.append(head, text, c.start, c.end, 100 + c.start, LineTime.fromMillis(5), c.flags);
    const batch = w.finishView();
    expect(batch.lineBlocks).toBe(true);
    const EntryBatch = protobuf.loadSync(findApiProto()).lookupType('megacollector.v1.EntryBatch');
    const decoded = EntryBatch.toObject(EntryBatch.decode(batch.payload), { longs: Number, bytes: String }) as {
      runs: Array<{ lines?: Array<{ data: string; offset: number }>; blocks?: Array<{ data: string; offset: number; timeUnixNano: number }> }>;
    };
    const run = decoded.runs[0];
    // "one" alone (followed by "two\r"), "two" (a \r stripped: a Line), "three\nfour\n" a block, "five" (no newline).
    expect(run?.blocks?.map((b) => [Buffer.from(b.data, 'base64').toString(), b.offset, b.timeUnixNano])).toEqual([['three\nfour\n', 109, 5_000_000]]);
    expect(run?.lines?.map((l) => [Buffer.from(l.data, 'base64').toString(), l.offset])).toEqual([
      ['one', 100],
      ['two', 104],
      ['five', 120],
    ]);
    // Wire order is file order: the block's lines come between the Lines around them.
    expect(decodeEntries(batch.payload).map((e) => [e.line.toString(), e.offset, e.flags])).toEqual([
      ['one', 100, 0],
      ['two', 104, 0],
      ['three', 109, 0],
      ['four', 115, 0],
      ['five', 120, LineFlag.NoNewline],
    ]);
  });

  it('holds lines as views until settle(): their bytes may change only after it', () => {
    const buf = Buffer.from('aa\nbb\ncc\n');
    const w = new EntryBatchWriter(header, { lineBlocks: true });
    const head = new RunHead('/a', 'ia');
    const t = LineTime.fromMillis(1);
    w.append(head, buf, 0, 2, 0, t);
    w.append(head, buf, 3, 5, 3, t);
    expect(w.entryCount).toBe(2);
    const held = w.byteLength;
    w.settle();
    expect(w.byteLength).toBe(held);
    buf.fill(0x7a);
    w.append(head, Buffer.from('dd\n'), 0, 2, 6, t);
    expect(decodeEntries(w.finish()).map((e) => e.line.toString())).toEqual(['aa', 'bb', 'dd']);
  });

  it('writes one held line as a Line, byte for byte what a writer without blocks writes', () => {
    const buf = Buffer.from('only\n');
    const head = new RunHead('/a', 'ia');
    const out = [true, false].map((lineBlocks) => {
      const w = new EntryBatchWriter(header, { lineBlocks });
      w.append(head, buf, 0, 4, 9, LineTime.fromMillis(3));
      return w.finishView();
    });
    expect(out[0]?.payload.equals(out[1]?.payload as Buffer)).toBe(true);
    expect(out[0]?.lineBlocks).toBe(false);
  });

  it('starts a new block where lines are not adjacent, change time or file, or carry flags', () => {
    const buf = Buffer.from('a\nb\nc\nd\ne\n');
    const head = new RunHead('/a', 'ia');
    const other = new RunHead('/b', 'ib');
    const w = new EntryBatchWriter(header, { lineBlocks: true });
    const t1 = LineTime.fromMillis(1);
    w.append(head, buf, 0, 1, 0, t1);
    w.append(head, buf, 2, 3, 2, t1);
    w.append(head, buf, 6, 7, 6, t1); // not adjacent (c skipped)
    w.append(head, buf, 8, 9, 8, LineTime.fromMillis(2)); // another time
    w.append(other, buf, 8, 9, 8, LineTime.fromMillis(2)); // another file
    w.append(other, buf, 8, 9, 99, LineTime.fromMillis(2)); // an offset that does not follow
    expect(decodeEntries(w.finish()).map((e) => [e.source.path, e.line.toString(), e.offset, e.timeUnixNano])).toEqual([
      ['/a', 'a', 0, 1_000_000n],
      ['/a', 'b', 2, 1_000_000n],
      ['/a', 'd', 6, 1_000_000n],
      ['/a', 'e', 8, 2_000_000n],
      ['/b', 'e', 8, 2_000_000n],
      ['/b', 'e', 99, 2_000_000n],
    ]);
  });

  it('byteLengthWith bounds the length after any line, byteLength bounds what finish() returns (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ text: textArb, file: fc.nat(1) }), { maxLength: 6 }), (views) => {
        const heads = [new RunHead('/a', '1'), new RunHead('/bb', '22')];
        const w = new EntryBatchWriter(header, { lineBlocks: true, capacity: 16 });
        const t = LineTime.fromMillis(1);
        for (const v of views) {
          const head = heads[v.file] as RunHead;
          for (const c of cutLines(v.text)) {
            const bound = w.byteLengthWith(head, c.end - c.start, c.start);
            w.append(head, v.text, c.start, c.end, c.start, t, c.flags);
            expect(w.byteLength).toBeLessThanOrEqual(bound);
          }
          w.settle();
        }
        const predicted = w.byteLength;
        expect(w.finish().length).toBeLessThanOrEqual(predicted);
      }),
      { numRuns: 300 },
    );
  });

  it('is re-cut into Lines by fitEntryBatch (for an aggregator that does not read blocks)', () => {
    const text = Buffer.from('alpha\nbeta\ngamma\n');
    const w = new EntryBatchWriter(header, { lineBlocks: true });
    const head = new RunHead('/a', 'ia');
    for (const c of cutLines(text)) w.append(head, text, c.start, c.end, c.start, LineTime.fromMillis(1), c.flags);
    const batch = w.finishView();
    expect(batch.lineBlocks).toBe(true);
    const fitted = fitEntryBatch(batch.payload, { maxChunkBytes: 1 << 20, maxLineBytes: 1 << 20, maxEntriesPerChunk: 100 });
    expect(fitted).toHaveLength(1);
    const EntryBatch = protobuf.loadSync(findApiProto()).lookupType('megacollector.v1.EntryBatch');
    const decoded = EntryBatch.toObject(EntryBatch.decode(fitted[0]?.payload as Buffer)) as { runs: Array<{ lines?: unknown[]; blocks?: unknown[] }> };
    expect(decoded.runs[0]?.blocks ?? []).toHaveLength(0);
    expect(decoded.runs[0]?.lines).toHaveLength(3);
    expect(readAll(fitted[0]?.payload as Buffer)).toEqual(readAll(batch.payload));
  });
});

/** A batch of one run whose only field is a LineBlock of the given fields (in the order given). */
function blockBatch(fields: Buffer[]): Buffer {
  const block = Buffer.concat(fields);
  const blockField = Buffer.alloc(1 + 5 + block.length);
  blockField[0] = 0x22;
  const afterLen = writeVarint(blockField, 1, block.length);
  block.copy(blockField, afterLen);
  const blockBytes = blockField.subarray(0, afterLen + block.length);
  const run = Buffer.concat([Buffer.from([0x12, 1, 0x49]), blockBytes]); // file_id "I", then the block
  const runField = Buffer.alloc(1 + 5 + run.length);
  runField[0] = 0x1a;
  const at = writeVarint(runField, 1, run.length);
  run.copy(runField, at);
  return Buffer.concat([header, runField.subarray(0, at + run.length)]);
}

function dataField(s: string): Buffer {
  const b = Buffer.from(s);
  const out = Buffer.alloc(1 + 5 + b.length);
  out[0] = 0x0a;
  const at = writeVarint(out, 1, b.length);
  b.copy(out, at);
  return out.subarray(0, at + b.length);
}

function offsetField(n: number): Buffer {
  const out = Buffer.alloc(11);
  out[0] = 0x10;
  return out.subarray(0, writeVarint(out, 1, n));
}

function timeField(n: bigint): Buffer {
  const out = Buffer.alloc(9);
  out[0] = 0x19;
  out.writeBigUInt64LE(n, 1);
  return out;
}

describe('LineBlocks as received: what an aggregator accepts and refuses', () => {
  it('reads the fields in any order, and empty lines', () => {
    const batch = blockBatch([timeField(42n), offsetField(7), dataField('x\n\nyz\n')]);
    expect(decodeEntries(batch).map((e) => [e.source.fileId, e.line.toString(), e.offset, e.timeUnixNano, e.flags])).toEqual([
      ['I', 'x', 7, 42n, 0],
      ['I', '', 9, 42n, 0],
      ['I', 'yz', 10, 42n, 0],
    ]);
    expect(identityRuns(batch).runs).toEqual([{ fileId: 'I', lo: 7, hi: 10, next: 13, count: 3 }]);
  });

  it('holds no line when its data is empty or absent', () => {
    expect(scanEntryBatch(blockBatch([dataField(''), offsetField(3)]), { maxLineBytes: 10 }).entryCount).toBe(0);
    expect(scanEntryBatch(blockBatch([offsetField(3)]), { maxLineBytes: 10 }).entryCount).toBe(0);
  });

  it('refuses a block whose data does not end with a newline (a line cut off)', () => {
    const batch = blockBatch([dataField('whole\ncut'), offsetField(0)]);
    expect(() => scanEntryBatch(batch, { maxLineBytes: 100 })).toThrow(ScanError);
    expect(() => scanEntryBatch(batch, { maxLineBytes: 100 })).toThrow(/does not end with a newline/);
    expect(() => decodeEntries(batch)).toThrow(/does not end with a newline/);
  });

  it('counts a block line by line against maxEntries and maxLineBytes', () => {
    const batch = blockBatch([dataField('a\nbbbbbbbbbb\nc\n')]);
    const scan = scanEntryBatch(batch, { maxLineBytes: 5 });
    expect(scan).toMatchObject({ entryCount: 3, oversizedLines: 1, longestLine: 10, lineBytes: 12 });
    expect(() => scanEntryBatch(batch, { maxLineBytes: 5, maxEntries: 2 })).toThrow(/more than 2 entries/);
    // A hostile block of a million empty lines costs a walk of the first maxEntries of them.
    const hostile = blockBatch([dataField('\n'.repeat(1_000_000))]);
    expect(() => scanEntryBatch(hostile, { maxLineBytes: 5, maxEntries: 10 })).toThrow(ScanError);
  });
});

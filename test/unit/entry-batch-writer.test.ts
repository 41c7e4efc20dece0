import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { EntryBatchWriter, RunHead, decodeEntries, encodeBatchHeader, scanEntryBatch } from '../../src/wire/entry-batch.js';
import { LineTime } from '../../src/wire/line-time.js';
import { findApiProto } from '../../src/wire/grpc-api.js';

/** Nanoseconds of whole milliseconds as the collector wrote them before LineTime: through a BigInt. */
const oldNanos = (ms: number): bigint => BigInt(Math.floor(ms)) * 1_000_000n;

describe('LineTime: time_unix_nano without a BigInt per line', () => {
  it('has the bytes of BigInt(ms) * 1e6 for any millisecond a fixed64 holds (to the year 2554) (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 18_446_744_073_709, noNaN: true }), (ms) => {
        const t = LineTime.fromMillis(ms);
        expect(t.toBigInt()).toBe(oldNanos(ms));
        const want = Buffer.alloc(8);
        want.writeBigUInt64LE(oldNanos(ms));
        const got = Buffer.alloc(8);
        got.writeUInt32LE(t.lo, 0);
        got.writeUInt32LE(t.hi, 4);
        expect(got.equals(want)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('round-trips any 64-bit value through fromBigInt', () => {
    for (const v of [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 1_700_000_000_123_000_000n, 2n ** 64n - 1n]) expect(LineTime.fromBigInt(v).toBigInt()).toBe(v);
  });

  it('append(LineTime) writes the same bytes as addLine(BigInt): the wire is unchanged', () => {
    const header = encodeBatchHeader('c', [{ key: 'host', value: 'h' }]);
    const head = new RunHead('/var/log/a.log', 'id');
    const src = Buffer.from('hello world\n');
    for (const ms of [0, 1, 1_700_000_000_123, Date.now(), 4_102_444_800_000]) {
      const a = new EntryBatchWriter(header);
      const b = new EntryBatchWriter(header);
      a.addLine(head, src, 0, 11, 12_345, oldNanos(ms), 0);
      b.append(head, src, 0, 11, 12_345, LineTime.fromMillis(ms), 0);
      const bytes = b.finish();
      expect(bytes.equals(a.finish())).toBe(true);
      expect(decodeEntries(bytes)[0]?.timeUnixNano).toBe(oldNanos(ms));
    }
  });
});

describe('EntryBatchWriter: run prefixes in place, one copy per chunk', () => {
  const header = encodeBatchHeader('col', [{ key: 'k', value: 'v' }]);

  it('writes each FileRun length as a 5-byte varint that protobufjs, the scan and the decoder all read', () => {
    const w = new EntryBatchWriter(header);
    const a = new RunHead('/a', 'ia');
    const b = new RunHead('/b', 'ib');
    w.addLine(a, Buffer.from('one'), 0, 3, 0, 7n);
    w.addLine(a, Buffer.from('two'), 0, 3, 4, 7n);
    w.addLine(b, Buffer.from('three'), 0, 5, 0, 8n);
    const predicted = w.byteLength;
    const buf = w.finish();
    expect(buf.length).toBe(predicted);
    // The first run follows the header: its tag, then 5 varint bytes, the last without continuation bit.
    const at = header.length;
    expect(buf[at]).toBe(0x1a);
    expect([...buf.subarray(at + 1, at + 5)].every((x) => x >= 0x80)).toBe(true);
    expect(buf[at + 5]).toBeLessThan(0x80);
    const EntryBatch = protobuf.loadSync(findApiProto()).lookupType('megacollector.v1.EntryBatch');
    const decoded = EntryBatch.toObject(EntryBatch.decode(buf), { longs: String, bytes: String }) as { runs: Array<{ path: string; lines: unknown[] }> };
    expect(decoded.runs.map((r) => [r.path, r.lines.length])).toEqual([
      ['/a', 2],
      ['/b', 1],
    ]);
    expect(scanEntryBatch(buf, { maxLineBytes: 10 }).entryCount).toBe(3);
    expect(decodeEntries(buf).map((e) => [e.source.path, e.line.toString(), e.offset, e.timeUnixNano])).toEqual([
      ['/a', 'one', 0, 7n],
      ['/a', 'two', 4, 7n],
      ['/b', 'three', 0, 8n],
    ]);
  });

  it('byteLengthWith bounds the length after the line, byteLength is exact (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ len: fc.nat(300), file: fc.nat(2), offset: fc.maxSafeNat(), flags: fc.nat(15) }), { maxLength: 40 }), (lines) => {
        const heads = [new RunHead('/a', '1'), new RunHead('/bb', '22'), new RunHead('/ccc', '333')];
        const w = new EntryBatchWriter(header, 8);
        for (const l of lines) {
          const head = heads[l.file] as RunHead;
          const bound = w.byteLengthWith(head, l.len, l.offset);
          w.addLine(head, Buffer.alloc(l.len, 0x61), 0, l.len, l.offset, 1n, l.flags);
          expect(w.byteLength).toBeLessThanOrEqual(bound);
        }
        const predicted = w.byteLength;
        expect(w.finish().length).toBe(predicted);
      }),
      { numRuns: 300 },
    );
  });

  it('hands a full buffer over as a view (no copy) and copies a small batch out, keeping its buffer', () => {
    const w = new EntryBatchWriter(header, { capacity: 4096, headroom: 16, tailroom: 6 });
    const head = new RunHead('/a', 'id');
    const line = Buffer.alloc(100, 0x62);
    while (w.byteLengthWith(head, 100, 0) <= 4096 - 22) w.addLine(head, line, 0, 100, 0, 1n);
    const big = w.finishView();
    expect(big.payload.buffer).toBe(big.backing.buffer);
    expect(big.payload.byteOffset - big.backing.byteOffset).toBe(16);
    expect(big.backing.length).toBe(4096);
    const bigCopy = Buffer.from(big.payload);
    // The writer goes on in a new buffer: the handed-over batch is never written again.
    w.addLine(head, Buffer.from('x'), 0, 1, 0, 1n);
    const small = w.finishView();
    expect(big.payload.equals(bigCopy)).toBe(true);
    expect(small.backing.length).toBe(16 + small.payload.length + 6);
    expect(small.payload.byteOffset - small.backing.byteOffset).toBe(16);
    expect(decodeEntries(small.payload).map((e) => e.line.toString())).toEqual(['x']);
    expect(decodeEntries(big.payload).length).toBe(Math.floor((4096 - 22 - header.length - 1 - 5 - head.encoded.length) / 115));
    // Small batches do not take the buffer: the next one is written where the last one was.
    w.addLine(head, Buffer.from('y'), 0, 1, 0, 1n);
    const again = w.finishView();
    expect(decodeEntries(again.payload).map((e) => e.line.toString())).toEqual(['y']);
    expect(decodeEntries(small.payload).map((e) => e.line.toString())).toEqual(['x']);
  });

  it('after setCapacity, takes buffers of the new size (a smaller chunk limit learned later)', () => {
    const w = new EntryBatchWriter(header, { capacity: 4096, headroom: 16, tailroom: 6 });
    const head = new RunHead('/a', 'id');
    w.addLine(head, Buffer.from('x'), 0, 1, 0, 1n);
    w.setCapacity(1024);
    expect(w.finishView().backing.length).toBeLessThan(100);
    const line = Buffer.alloc(100, 0x63);
    while (w.byteLength < 600) w.addLine(head, line, 0, 100, 0, 1n);
    const next = w.finishView();
    expect(next.backing.length).toBe(1024);
    expect(next.payload.buffer).toBe(next.backing.buffer);
  });
});

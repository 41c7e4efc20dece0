import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import {
  EntryBatchWriter,
  LineFlag,
  RunHead,
  decodeEntries,
  encodeBatchHeader,
  encodeEntries,
  scanEntryBatch,
} from '../../src/wire/entry-batch.js';
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
    expect(scanEntryBatch(buf, limits)).toEqual({ entryCount: 3, lineBytes: 10 });
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
    expect(() => scanEntryBatch(buf, { maxLineBytes: 99 })).toThrow(/exceeds the limit/);
  });

  it('never throws anything but WireError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          scanEntryBatch(Buffer.from(bytes), limits);
        } catch (err) {
          expect((err as Error).name).toBe('WireError');
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

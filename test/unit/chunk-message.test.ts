import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { CHUNK_HEADROOM, CHUNK_TAILROOM, encodeChunkMessage } from '../../src/wire/chunk-message.js';
import { EntryBatchWriter, RunHead, decodeEntries, encodeBatchHeader } from '../../src/wire/entry-batch.js';
import { findApiProto } from '../../src/wire/grpc-api.js';
import { encodeChunk } from '../../src/wire/ingest-codec.js';

const Chunk = protobuf.loadSync(findApiProto()).lookupType('megacollector.v1.Chunk');

/** What the collector sent before: the copying encoder (ingest-codec.ts), canonical proto3. */
const viaCodec = (sequence: number, entries: Buffer, entryCount: number): Buffer => encodeChunk({ sequence, entries, entryCount });

function batch(lines: number): { payload: Buffer; backing: Buffer; count: number } {
  const w = new EntryBatchWriter(encodeBatchHeader('c', [{ key: 'host', value: 'h' }]), { capacity: 64 * 1024, headroom: CHUNK_HEADROOM, tailroom: CHUNK_TAILROOM });
  const head = new RunHead('/var/log/a.log', 'id');
  for (let i = 0; i < lines; i++) w.addLine(head, Buffer.from(`line ${i}`), 0, `line ${i}`.length, i * 10, 1_700_000_000_000_000_000n);
  return { ...w.finishView(), count: lines };
}

describe('encodeChunkMessage: the gRPC Chunk without copying the entries', () => {
  it('writes the bytes encodeChunk writes, in place around the entries (a view of their buffer), which protobufjs decodes', () => {
    for (const lines of [1, 10, 500]) {
      const { payload, backing, count } = batch(lines);
      const want = viaCodec(7, payload, count);
      const out = encodeChunkMessage({ sequence: 7, entries: payload, entryCount: count, backing });
      expect(out.equals(want)).toBe(true);
      expect(out.buffer).toBe(backing.buffer);
      const decoded = Chunk.toObject(Chunk.decode(out), { longs: Number }) as { sequence: number; entries: Uint8Array; entryCount: number };
      expect(decoded.sequence).toBe(7);
      expect(decoded.entryCount).toBe(count);
      expect(decodeEntries(Buffer.from(decoded.entries)).map((e) => e.line.toString())).toEqual(Array.from({ length: lines }, (_, i) => `line ${i}`));
    }
  });

  it('copies once when the entries have no room around them (a re-cut part), with the same bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.nat(2 ** 32 - 1), (bytes, sequence, entryCount) => {
        const entries = Buffer.from(bytes);
        const out = encodeChunkMessage({ sequence, entries, entryCount });
        expect(out.equals(viaCodec(sequence, entries, entryCount))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('a resend under a new sequence number rewrites the fields around the same entries', () => {
    const { payload, backing, count } = batch(3);
    encodeChunkMessage({ sequence: 1, entries: payload, entryCount: count, backing });
    const again = encodeChunkMessage({ sequence: 2 ** 40, entries: payload, entryCount: count, backing });
    expect(again.equals(viaCodec(2 ** 40, payload, count))).toBe(true);
    expect(decodeEntries(payload).length).toBe(3);
  });
});

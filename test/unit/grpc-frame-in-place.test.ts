import { describe, expect, it } from 'vitest';
import * as compressionFilter from '@grpc/grpc-js/build/src/compression-filter.js';
import { serializeChunk } from '../../src/collector/aggregator-channel.js';
import { frameInPlace } from '../../src/collector/grpc-frame-in-place.js';
import { CHUNK_HEADROOM, CHUNK_TAILROOM, GRPC_FRAME_PREFIX, encodeChunkMessage } from '../../src/wire/chunk-message.js';
import { EntryBatchWriter, RunHead, encodeBatchHeader } from '../../src/wire/entry-batch.js';

/** grpc-js's own framing step, as a call's filter stack runs it for every message sent. */
async function frameAsGrpcJs(message: Buffer): Promise<Buffer> {
  const filter = new compressionFilter.CompressionFilter({}, {});
  const out = await filter.sendMessage(Promise.resolve({ message }));
  return out.message;
}

/** A chunk that fills its buffer (handed over as a view), a buffer of its own (not from Buffer's pool). */
function chunk(): { payload: Buffer; backing: Buffer } {
  const w = new EntryBatchWriter(encodeBatchHeader('c', []), { capacity: 8192, headroom: CHUNK_HEADROOM, tailroom: CHUNK_TAILROOM });
  const head = new RunHead('/l/a.log', 'id');
  for (let i = 0; i < 300; i++) w.addLine(head, Buffer.from(`line ${i}`), 0, `line ${i}`.length, i * 7, 1n);
  return w.finishView();
}

describe('grpc-frame-in-place: grpc-js frames a serialized Chunk in its own buffer', () => {
  it('gives the same frame as grpc-js, as a view of the chunk buffer (no copy)', async () => {
    const { payload, backing } = chunk();
    const message = encodeChunkMessage({ sequence: 3, entries: payload, entryCount: 300, backing });
    const want = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), message]);
    want.writeUInt32BE(message.length, 1);
    const frame = await frameAsGrpcJs(frameInPlace(message));
    expect(frame.equals(want)).toBe(true);
    expect(frame.buffer).toBe(backing.buffer);
    expect(frame.byteOffset).toBe(message.byteOffset - GRPC_FRAME_PREFIX);
  });

  it('leaves every other message to grpc-js (a copy), also the same buffer sent again unmarked', async () => {
    const { payload, backing } = chunk();
    const message = encodeChunkMessage({ sequence: 3, entries: payload, entryCount: 300, backing });
    frameInPlace(message);
    await frameAsGrpcJs(message);
    const again = await frameAsGrpcJs(message);
    expect(again.buffer).not.toBe(backing.buffer);
    const other = Buffer.alloc(5, 'hello');
    const framed = await frameAsGrpcJs(other);
    expect(framed.buffer).not.toBe(other.buffer);
    expect([...framed]).toEqual([0, 0, 0, 0, 5, ...other]);
  });

  it('regression: a copy that shares Buffer\'s pool with a small chunk is framed by grpc-js, not over the chunk\'s bytes', async () => {
    for (let attempt = 0; attempt < 10; attempt++) {
      // A small backing from the pool with no room around the entries: the serializer copies, and the
      // copy is the pool's next slice, right behind the backing.
      const backing = Buffer.allocUnsafe(100).fill(0xab);
      const message = serializeChunk({ sequence: 1, entries: backing, entryCount: 1, backing });
      if (message.buffer !== backing.buffer) continue;
      const frame = await frameAsGrpcJs(message);
      expect(frame.subarray(5).equals(message)).toBe(true);
      expect(backing.every((b) => b === 0xab)).toBe(true);
      return;
    }
    throw new Error('the copy never shared the pool with the backing: the case was not exercised');
  });
});

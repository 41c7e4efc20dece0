// The module grpc-js's client uses to frame each message (one CommonJS instance; in the bundle, one copy of it).
import * as compressionFilter from '@grpc/grpc-js/build/src/compression-filter.js';
import { GRPC_FRAME_PREFIX } from '../wire/chunk-message.js';

/**
 * grpc-js (1.14) frames every message it sends by copying it into a new buffer behind the 5-byte gRPC
 * prefix (`IdentityHandler.writeMessage`, the uncompressed case). For the collector's chunks that was
 * a 1 MiB copy per chunk and a 1 MiB buffer of garbage outside the V8 heap per chunk, tens of MiB of
 * RSS until a GC found them (bench/README.md, "What takes the collector's RSS"). The Ship serializer
 * (encodeChunkMessage) already writes the Chunk in place in the chunk's own buffer, with the prefix's
 * room free before it; a message registered here (`frameInPlace`) is framed there too: the prefix is
 * written into that room and the frame is a view, no copy. Every other message (and any compressed
 * one) is framed by grpc-js as before.
 *
 * The chunk buffer is rewritten (prefix and Chunk fields) only when that chunk is sent again: after its
 * stream broke (what that stream still held is discarded) or after the aggregator answered it (it has
 * every byte), so no bytes change under a write that still counts; and it is reused for a later chunk
 * only once acknowledged (chunk-builder.ts `release`). test/unit/grpc-frame-in-place.test.ts fails if a
 * grpc-js upgrade moves the method.
 */
type WriteMessage = (this: unknown, message: Buffer, compress: boolean) => Promise<Buffer> | Buffer;

const inPlace = new WeakSet<Buffer>();
let installed = false;

function install(): void {
  if (installed) return;
  const mod = compressionFilter as unknown as {
    CompressionFilter?: new (options: object, shared: object) => { sendCompression?: object };
  };
  const filter = mod.CompressionFilter === undefined ? undefined : new mod.CompressionFilter({}, {});
  const proto = filter?.sendCompression === undefined ? undefined : (Object.getPrototypeOf(filter.sendCompression) as { writeMessage?: WriteMessage });
  const original = proto?.writeMessage;
  if (proto === undefined || typeof original !== 'function' || proto.constructor.name !== 'IdentityHandler') {
    throw new Error('@grpc/grpc-js changed: IdentityHandler.writeMessage not found (see grpc-frame-in-place.ts)');
  }
  proto.writeMessage = function framed(this: unknown, message: Buffer, compress: boolean): Promise<Buffer> | Buffer {
    if (compress || !inPlace.has(message)) return original.call(this, message, compress);
    inPlace.delete(message);
    const frame = Buffer.from(message.buffer, message.byteOffset - GRPC_FRAME_PREFIX, message.length + GRPC_FRAME_PREFIX);
    frame[0] = 0;
    frame.writeUInt32BE(message.length, 1);
    return frame;
  };
  installed = true;
}

/**
 * Marks `message` (a serialized message with GRPC_FRAME_PREFIX bytes before it in its buffer that
 * nothing else uses) to be framed in place; installs the framing once per process. Returns `message`.
 */
export function frameInPlace(message: Buffer): Buffer {
  install();
  if (message.byteOffset >= GRPC_FRAME_PREFIX) inPlace.add(message);
  return message;
}

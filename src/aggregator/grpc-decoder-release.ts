/**
 * grpc-js (1.14, server-interceptors.ts) decodes a call's messages with a StreamDecoder that gathers
 * the HTTP/2 DATA pieces of a message in `readPartialMessage`, concatenates them into the message when
 * the last piece is in, and lets go of the pieces only when the FIRST BYTE OF THE NEXT MESSAGE arrives.
 * Until then every call holds a second copy of the last message it received: for a stream paused by
 * the in-flight budget, or a collector between two chunks, a whole chunk (a heap snapshot of the
 * aggregator under 50 streams of 1 MiB chunks: 50.6 MiB in 953 such pieces, half of its live Buffers).
 * So the call's decoder is wrapped to drop the pieces as soon as a message is complete.
 *
 * grpc-js has no public way to reach the decoder: it is `call.call.decoder` (the handler's Duplex →
 * its BaseServerInterceptingCall → the StreamDecoder; no server interceptors are installed). False
 * when that shape is not found (then nothing changes and the pieces are kept as before).
 */

/** The fields of grpc-js's StreamDecoder this relies on. */
interface StreamDecoderShape {
  readState: unknown;
  readPartialMessage: unknown;
  write(data: Buffer): Buffer[];
}

/** grpc-js's ReadState.NO_DATA (a const enum): between two messages. */
const NO_DATA = 0;

function decoderOf(call: object): StreamDecoderShape | undefined {
  const inner = (call as { call?: { decoder?: Partial<StreamDecoderShape> } }).call;
  const decoder = inner?.decoder;
  if (decoder === undefined || decoder === null) return undefined;
  if (typeof decoder.write !== 'function' || typeof decoder.readState !== 'number' || !Array.isArray(decoder.readPartialMessage)) return undefined;
  return decoder as StreamDecoderShape;
}

/** Makes the call's decoder let go of a message's pieces once the message is complete (see above). */
export function releaseDecodedPieces(call: object): boolean {
  const decoder = decoderOf(call);
  if (decoder === undefined) return false;
  const write = decoder.write;
  decoder.write = function (this: StreamDecoderShape, data: Buffer): Buffer[] {
    const messages = write.call(this, data);
    // Between messages the pieces are never read again (the next message starts a new list).
    if (this.readState === NO_DATA && (this.readPartialMessage as Buffer[]).length > 0) this.readPartialMessage = [];
    return messages;
  };
  return true;
}

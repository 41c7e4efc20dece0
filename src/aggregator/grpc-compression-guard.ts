import * as grpc from '@grpc/grpc-js';
// The very module grpc-js's server uses (one CommonJS instance; in the bundle, one copy of it).
import * as serverInterceptors from '@grpc/grpc-js/build/src/server-interceptors.js';

/**
 * The gRPC spec makes a message with the compressed flag set on a call without a `grpc-encoding`
 * (or with `identity`) a protocol error, but grpc-js (1.14) hands such a message on as if it were
 * uncompressed: a gzip body would reach our scan as garbage, and a plain body with the flag set was
 * acknowledged. grpc-js has no hook for the flag, so this wraps the one internal method that sees it
 * (`BaseServerInterceptingCall.decompressMessage`) to end such a call with INTERNAL, as the spec
 * says. test/integration/aggregator-hostile.test.ts sends such a message to a real aggregator and
 * fails if a grpc-js upgrade moves the method.
 */
type Decompress = (this: unknown, message: Buffer, encoding: string) => Buffer | Promise<Buffer>;

const listeners = new Set<() => void>();
let installed = false;

export const COMPRESSED_WITHOUT_ENCODING = 'message has the compressed flag set but the call declared no grpc-encoding';

function install(): void {
  if (installed) return;
  const mod = serverInterceptors as unknown as {
    BaseServerInterceptingCall?: { prototype: { decompressMessage?: Decompress } };
  };
  const proto = mod.BaseServerInterceptingCall?.prototype;
  const original = proto?.decompressMessage;
  if (proto === undefined || typeof original !== 'function') {
    throw new Error('@grpc/grpc-js changed: BaseServerInterceptingCall.decompressMessage not found (see grpc-compression-guard.ts)');
  }
  proto.decompressMessage = function guarded(this: unknown, message: Buffer, encoding: string): Buffer | Promise<Buffer> {
    // The first byte of a framed message is its flag: 0 = uncompressed; anything else needs an encoding.
    if (encoding === 'identity' && message.length > 0 && message[0] !== 0) {
      for (const l of listeners) l();
      return Promise.reject({ code: grpc.status.INTERNAL, details: COMPRESSED_WITHOUT_ENCODING });
    }
    return original.call(this, message, encoding);
  };
  installed = true;
}

/** Installs the guard (once per process) and calls `onRefused` for each message it refuses; returns the unsubscribe. */
export function guardCompressedFlag(onRefused: () => void): () => void {
  install();
  listeners.add(onRefused);
  return () => listeners.delete(onRefused);
}

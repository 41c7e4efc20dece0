import type { Readable } from 'node:stream';

/**
 * grpc-js hands a server streaming call to its handler as an object-mode Duplex with Node's default
 * read-ahead of 16 messages: paused, the call still pulls messages from HTTP/2 until 16 of them wait
 * in its buffer, and only then does flow control stop the sender. With chunks of up to
 * AGGREGATOR_MAX_CHUNK_BYTES that is up to 16 chunks per stream beyond the in-flight budget (50
 * streams of 1 MiB chunks held 116 MiB of Buffers against a 64 MiB budget). Without read-ahead (a
 * high-water mark of 0) a flowing call still flows (each message is handed on as it is decoded), and
 * a paused one stops asking grpc-js for more: it holds at most the message grpc-js was decoding.
 * There is no public way to set this on a call grpc-js creates; Node's Readable keeps it here.
 * False when the call is not such a Readable (then the in-flight budget is exceeded by up to 16
 * chunks per paused stream, as before).
 */
export function disableReadAhead(call: Readable): boolean {
  const state = (call as Readable & { _readableState?: { highWaterMark?: unknown } })._readableState;
  if (state === undefined || typeof state.highWaterMark !== 'number') return false;
  state.highWaterMark = 0;
  return true;
}

/**
 * Puts the call's reading under `request`: grpc-js asks HTTP/2 for a call's next message only in the
 * call's `_read` (startRead), so the call's `_read` is replaced by `request` (the stream wants its
 * next message), and the original is returned: calling it reads that message. Until then grpc-js
 * reads nothing of the stream (not even a partial message) and HTTP/2 flow control stops its sender.
 * Readable calls `_read` once and then waits for the message, so each request is answered by at
 * most one read. Undefined when the call has no `_read` of its own kind (then nothing is gated).
 */
export function gateReads(call: Readable, request: () => void): (() => void) | undefined {
  const readable = call as Readable & { _read?: unknown };
  const original = readable._read;
  if (typeof original !== 'function') return undefined;
  let size = 0;
  readable._read = (n: number): void => {
    size = n;
    request();
  };
  return () => {
    (original as (n: number) => void).call(call, size);
  };
}

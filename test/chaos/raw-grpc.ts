import { connect } from 'node:http2';

/**
 * Speaks gRPC by hand over HTTP/2, below grpc-js, to send what a well-behaved client never would: a
 * message with the compressed flag and no grpc-encoding, or a frame whose body is not a Chunk at all.
 * Reports whether the server answered with any message (an ack) and the grpc-status it ended with.
 */
export interface RawReply {
  /** Acks with code OK (proto3 leaves code 0 out: an Ack without field 2). */
  readonly okAcks: number;
  readonly acks: number;
  readonly grpcStatus: string;
}

function countAcks(data: Buffer): { acks: number; okAcks: number } {
  let acks = 0;
  let okAcks = 0;
  for (let at = 0; at + 5 <= data.length; ) {
    const len = data.readUInt32BE(at + 1);
    const body = data.subarray(at + 5, at + 5 + len);
    at += 5 + len;
    acks++;
    // Field 1 (sequence) is a varint; an Ack carrying a code has the tag 0x10 right after it.
    let i = 0;
    if (body[i] === 0x08) {
      i++;
      while (i < body.length && ((body[i] as number) & 0x80) !== 0) i++;
      i++;
    }
    if (body[i] !== 0x10) okAcks++;
  }
  return { acks, okAcks };
}

export function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** A Chunk message (api/api.proto): sequence = 1, entries = 2, entry_count = 3. */
export function encodeChunk(sequence: number, entries: Buffer, entryCount: number): Buffer {
  return Buffer.concat([Buffer.from([0x08]), varint(sequence), Buffer.from([0x12]), varint(entries.length), entries, Buffer.from([0x18]), varint(entryCount)]);
}

/** One gRPC length-prefixed message: compressed flag, 4-byte big-endian length, body. */
export function grpcFrame(body: Buffer, compressed: boolean): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed ? 1 : 0;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

export function sendRaw(address: string, frame: Buffer, timeoutMs = 5_000): Promise<RawReply> {
  return new Promise((resolve) => {
    const session = connect(`http://${address}`);
    session.on('error', () => undefined);
    const answer: Buffer[] = [];
    let grpcStatus = 'none';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.close();
      session.destroy();
      resolve({ ...countAcks(Buffer.concat(answer)), grpcStatus });
    };
    const timer = setTimeout(finish, timeoutMs);
    const req = session.request({
      ':method': 'POST',
      ':path': '/megacollector.v1.Ingest/Ship',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    req.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
    });
    req.on('data', (d: Buffer) => answer.push(d));
    req.on('trailers', (t) => {
      grpcStatus = String(t['grpc-status'] ?? grpcStatus);
    });
    req.on('error', () => finish());
    req.on('close', finish);
    req.write(frame);
    // Leave the request open a moment, as a live stream would, then half-close.
    setTimeout(() => req.end(), 500);
  });
}

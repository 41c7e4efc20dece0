import { describe, expect, it } from 'vitest';
// grpc-js's own decoder of a call's messages (no public entry point; the release relies on its shape).
import { StreamDecoder } from '@grpc/grpc-js/build/src/stream-decoder.js';
import { releaseDecodedPieces } from '../../src/aggregator/grpc-decoder-release.js';

/** A gRPC length-prefixed message. */
function framed(body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Like grpc-js's server call: the handler's stream → its BaseServerInterceptingCall → its decoder. */
function fakeCall(): { call: { decoder: StreamDecoder } } {
  return { call: { decoder: new StreamDecoder(-1) } };
}

/** The messages' bodies equal `expected` (compared as bytes: deep equality of large Buffers is slow). */
function bodiesAre(out: Buffer[], expected: Buffer[]): boolean {
  return out.length === expected.length && out.every((m, i) => m.subarray(5).equals(expected[i] as Buffer));
}

function pieces(decoder: StreamDecoder): number {
  return (decoder as unknown as { readPartialMessage: Buffer[] }).readPartialMessage.length;
}

describe('grpc-js decoder: the pieces of a decoded message', () => {
  const a = Buffer.alloc(100_000, 0x61);
  const b = Buffer.alloc(50_000, 0x62);
  const wire = Buffer.concat([framed(a), framed(b)]);
  /** Split like HTTP/2 DATA frames; the message boundary falls inside the 7th piece. */
  const frames = Array.from({ length: Math.ceil(wire.length / 16_384) }, (_, i) => wire.subarray(i * 16_384, (i + 1) * 16_384));

  it('grpc-js keeps them until the next message starts (a second copy of the last chunk per call)', () => {
    const { call } = fakeCall();
    const out = frames.slice(0, 6).flatMap((f) => call.decoder.write(f));
    expect(out).toHaveLength(0);
    const lastOfA = wire.subarray(6 * 16_384, 5 + a.length);
    expect(call.decoder.write(lastOfA)).toHaveLength(1);
    expect(pieces(call.decoder)).toBeGreaterThan(0);
  });

  it('released, they are let go as soon as the message is complete, and messages decode as before', () => {
    const c = fakeCall();
    expect(releaseDecodedPieces(c)).toBe(true);
    const out = frames.slice(0, 6).flatMap((f) => c.call.decoder.write(f));
    const lastOfA = wire.subarray(6 * 16_384, 5 + a.length);
    out.push(...c.call.decoder.write(lastOfA));
    expect(out).toHaveLength(1);
    expect(pieces(c.call.decoder)).toBe(0);
    // The rest, B's start arriving with nothing of A left: B decodes whole.
    for (const f of [wire.subarray(5 + a.length, 7 * 16_384), ...frames.slice(7)]) out.push(...c.call.decoder.write(f));
    expect(bodiesAre(out, [a, b])).toBe(true);
    expect(pieces(c.call.decoder)).toBe(0);
  });

  it('a boundary inside one piece: the next message keeps its own pieces', () => {
    const c = fakeCall();
    releaseDecodedPieces(c);
    const out = frames.slice(0, 7).flatMap((f) => c.call.decoder.write(f));
    expect(out).toHaveLength(1);
    // B is being read: its first bytes are held, not dropped.
    expect(pieces(c.call.decoder)).toBe(1);
    for (const f of frames.slice(7)) out.push(...c.call.decoder.write(f));
    expect(bodiesAre(out, [a, b])).toBe(true);
  });

  it('a call of another shape is left alone', () => {
    expect(releaseDecodedPieces({})).toBe(false);
    expect(releaseDecodedPieces({ call: { decoder: { write: () => [] } } })).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { AckCode, decodeAck, decodeChunk, encodeAck, encodeChunk } from '../../src/wire/ingest-codec.js';
import type { AckMessage } from '../../src/wire/ingest-codec.js';
import { findApiProto } from '../../src/wire/grpc-api.js';
import { WireError } from '../../src/wire/varint.js';

// The contract is api/api.proto: protobufjs reads it here (a devDependency; the programs never load it).
const root = protobuf.loadSync(findApiProto());
const Chunk = root.lookupType('megacollector.v1.Chunk');
const Ack = root.lookupType('megacollector.v1.Ack');
const CODES = Object.values(AckCode);

const chunkArb = fc.record({
  sequence: fc.oneof(fc.constant(0), fc.nat(), fc.maxSafeNat()),
  entries: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  entryCount: fc.oneof(fc.constant(0), fc.nat(), fc.constant(0xffffffff)),
});
const ackArb = fc.record({
  sequence: fc.oneof(fc.constant(0), fc.nat(), fc.maxSafeNat()),
  code: fc.constantFrom(...CODES),
  message: fc.oneof(fc.constant(''), fc.string({ unit: 'grapheme', maxLength: 40 })),
  retryAfterMs: fc.oneof(fc.constant(0), fc.nat(), fc.constant(0xffffffff)),
});
const protoOptions = { longs: Number, enums: String, bytes: Buffer, defaults: true };

describe('Chunk and Ack codecs against api/api.proto (protobufjs)', () => {
  it('protobufjs reads what encodeChunk wrote, and decodeChunk reads what protobufjs wrote', () => {
    fc.assert(
      fc.property(chunkArb, (chunk) => {
        const theirs = Chunk.toObject(Chunk.decode(encodeChunk(chunk)), protoOptions);
        expect({ ...theirs, entries: Buffer.from(theirs.entries as Uint8Array) }).toEqual(chunk);
        const ours = decodeChunk(Buffer.from(Chunk.encode(Chunk.fromObject(chunk)).finish()));
        expect(ours).toEqual(chunk);
        // Canonical proto3: the same bytes as protobufjs once defaults are left out.
        const sparse = Object.fromEntries(Object.entries(chunk).filter(([, v]) => v !== 0 && !(Buffer.isBuffer(v) && v.length === 0)));
        expect(encodeChunk(chunk)).toEqual(Buffer.from(Chunk.encode(Chunk.fromObject(sparse)).finish()));
      }),
    );
  });

  it('protobufjs reads what encodeAck wrote, and decodeAck reads what protobufjs wrote', () => {
    fc.assert(
      fc.property(ackArb, (ack) => {
        expect(Ack.toObject(Ack.decode(encodeAck(ack)), protoOptions)).toEqual(ack);
        expect(decodeAck(Buffer.from(Ack.encode(Ack.fromObject(ack)).finish()))).toEqual(ack);
      }),
    );
  });

  it('the empty message is all defaults; entries is a view into the received bytes', () => {
    expect(decodeChunk(Buffer.alloc(0))).toEqual({ sequence: 0, entries: Buffer.alloc(0), entryCount: 0 });
    expect(decodeAck(Buffer.alloc(0))).toEqual({ sequence: 0, code: AckCode.OK, message: '', retryAfterMs: 0 });
    const wire = encodeChunk({ sequence: 7, entries: Buffer.from('abc'), entryCount: 1 });
    const chunk = decodeChunk(wire);
    expect(chunk.entries.buffer).toBe(wire.buffer);
  });

  it('skips fields a newer peer added; keeps an unknown Ack code as its number', () => {
    const withExtra = Buffer.concat([encodeChunk({ sequence: 3, entries: Buffer.from('x'), entryCount: 1 }), Buffer.from([0x22, 0x02, 0x01, 0x02, 0x28, 0x05])]);
    expect(decodeChunk(withExtra)).toEqual({ sequence: 3, entries: Buffer.from('x'), entryCount: 1 });
    expect(decodeAck(Buffer.from([0x08, 0x09, 0x10, 0x09])).code).toBe(9);
    expect(decodeAck(Buffer.from([0x08, 0x09, 0x2a, 0x01, 0x41]))).toEqual({ sequence: 9, code: AckCode.OK, message: '', retryAfterMs: 0 });
  });

  it('throws WireError on bytes that are not the message', () => {
    // entry_count (field 3) as length-delimited, running past the end.
    expect(() => decodeChunk(Buffer.from([0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]))).toThrow(WireError);
    expect(() => decodeChunk(Buffer.from([0x12, 0x05, 0x01]))).toThrow(WireError); // entries longer than the message
    expect(() => decodeChunk(Buffer.from([0x0a, 0x00]))).toThrow(WireError); // sequence as bytes
    expect(() => decodeChunk(Buffer.from([0x00, 0x00]))).toThrow(WireError); // field 0
    expect(() => decodeAck(Buffer.from([0x08]))).toThrow(WireError); // truncated varint
  });

  it('refuses to encode what the fields cannot hold', () => {
    expect(() => encodeChunk({ sequence: -1, entries: Buffer.alloc(0), entryCount: 0 })).toThrow(WireError);
    expect(() => encodeChunk({ sequence: 1, entries: Buffer.alloc(0), entryCount: 2 ** 32 })).toThrow(WireError);
    expect(() => encodeAck({ sequence: 1, code: 'NOPE' as AckMessage['code'], message: '', retryAfterMs: 0 })).toThrow(WireError);
  });
});

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AeronFrameError,
  FrameType,
  decodeDatagram,
  decodeSetup,
  encodeDatagram,
  encodeErr,
  encodeHeartbeat,
  encodeNak,
  encodeRttm,
  encodeSetup,
  encodeStatusMessage,
  decodeErr,
  decodeRttm,
  decodeStatusMessage,
} from '../../src/aeron/frame-codec.js';
import { VECTOR_NAMES, loadVector } from '../helpers/aeron-vectors.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('Aeron frame codec against captured datagrams', () => {
  for (const name of VECTOR_NAMES) {
    it(`decodes and re-encodes every datagram of ${name} byte for byte`, () => {
      const captured = loadVector(name);
      expect(captured.length).toBeGreaterThan(10);
      for (const d of captured) {
        const frames = decodeDatagram(d.bytes);
        expect(frames.length).toBeGreaterThan(0);
        expect(frames[0]?.type).toBe(d.type);
        expect(encodeDatagram(frames).equals(d.bytes)).toBe(true);
      }
    });
  }

  it('finds the PAD header riding at the end of a term in the rotation capture', () => {
    const pads = loadVector('term-rotation')
      .flatMap((d) => (d.type === FrameType.Data || d.type === FrameType.Pad ? decodeDatagram(d.bytes) : []))
      .filter((f) => f.type === FrameType.Pad);
    expect(pads.length).toBeGreaterThanOrEqual(4);
    for (const p of pads) {
      if (p.type !== FrameType.Pad) continue;
      expect(p.termOffset + p.frameLength).toBe(65536);
    }
  });
});

describe('Aeron frame codec against the byte-exact examples (§1.11)', () => {
  const common = { sessionId: 0x01020304, streamId: 1001 };
  it('SETUP', () => {
    const bytes = hex('28 00 00 00 00 00 05 00 00 00 00 00 04 03 02 01 e9 03 00 00 64 00 00 00 64 00 00 00 00 00 01 00 80 05 00 00 00 00 00 00');
    expect(encodeSetup({ ...common, flags: 0, termOffset: 0, initialTermId: 100, activeTermId: 100, termLength: 65536, mtu: 1408, ttl: 0 })).toEqual(bytes);
    expect(decodeSetup(bytes).mtu).toBe(1408);
  });
  it('heartbeat and EOS heartbeat', () => {
    const hb = hex('00 00 00 00 00 c0 01 00 40 00 00 00 04 03 02 01 e9 03 00 00 64 00 00 00 00 00 00 00 00 00 00 00');
    expect(encodeHeartbeat({ ...common, termId: 100, termOffset: 64, eos: false })).toEqual(hb);
    const eos = Buffer.from(hb);
    eos[5] = 0xe0;
    expect(encodeHeartbeat({ ...common, termId: 100, termOffset: 64, eos: true })).toEqual(eos);
  });
  it('SM, S-flag SM and NAK', () => {
    const sm = hex('24 00 00 00 00 00 03 00 04 03 02 01 e9 03 00 00 64 00 00 00 00 00 00 00 00 00 02 00 88 77 66 55 44 33 22 11');
    expect(encodeStatusMessage({ ...common, flags: 0, consumptionTermId: 100, consumptionTermOffset: 0, receiverWindow: 131072, receiverId: 0x1122334455667788n })).toEqual(sm);
    const s = hex('24 00 00 00 00 80 03 00 04 03 02 01 e9 03 00 00 00 00 00 00 00 00 00 00 00 00 00 00 88 77 66 55 44 33 22 11');
    expect(decodeStatusMessage(s)).toMatchObject({ flags: 0x80, consumptionTermId: 0, receiverWindow: 0 });
    const nak = hex('1c 00 00 00 00 00 02 00 04 03 02 01 e9 03 00 00 64 00 00 00 20 00 00 00 20 00 00 00');
    expect(encodeNak({ ...common, flags: 0, termId: 100, termOffset: 32, length: 32 })).toEqual(nak);
  });
  it('DATA "hello" padded to 64 bytes and a PAD header', () => {
    const data = Buffer.alloc(64);
    hex('25 00 00 00 00 c0 01 00 00 00 00 00 04 03 02 01 e9 03 00 00 64 00 00 00 00 00 00 00 00 00 00 00 68 65 6c 6c 6f').copy(data);
    const frames = decodeDatagram(data);
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ type: FrameType.Data, frameLength: 37, flags: 0xc0, termId: 100 });
    expect(encodeDatagram(frames)).toEqual(data);
    const pad = hex('40 00 00 00 00 c0 00 00 c0 ff 00 00 04 03 02 01 e9 03 00 00 64 00 00 00 00 00 00 00 00 00 00 00');
    expect(decodeDatagram(pad)[0]).toMatchObject({ type: FrameType.Pad, frameLength: 64, termOffset: 65472 });
    expect(encodeDatagram(decodeDatagram(pad))).toEqual(pad);
  });
  it('RTTM and ERR round trip, SM with a group tag', () => {
    const rttm = encodeRttm({ ...common, flags: 0x80, echoTimestampNs: 123456789n, receptionDeltaNs: 5n, receiverId: -7n });
    expect(decodeRttm(rttm)).toMatchObject({ echoTimestampNs: 123456789n, receiverId: -7n });
    const err = encodeErr({ ...common, flags: 0, receiverId: 9n, groupTag: 0n, errorCode: 13, message: 'image rejected' });
    expect(decodeErr(err)).toMatchObject({ errorCode: 13, message: 'image rejected' });
    const tagged = encodeStatusMessage({ ...common, flags: 0, consumptionTermId: 1, consumptionTermOffset: 32, receiverWindow: 4096, receiverId: 1n, groupTag: 42n });
    expect(tagged.length).toBe(44);
    expect(decodeStatusMessage(tagged).groupTag).toBe(42n);
  });
});

describe('Aeron frame codec on malformed input', () => {
  it('rejects wrong versions, short frames and bad lengths with AeronFrameError', () => {
    const bad = encodeHeartbeat({ sessionId: 1, streamId: 1, termId: 0, termOffset: 0, eos: false });
    bad[4] = 1;
    expect(() => decodeDatagram(bad)).toThrow(AeronFrameError);
    expect(() => decodeDatagram(Buffer.alloc(5))).toThrow(AeronFrameError);
    const sm = encodeStatusMessage({ sessionId: 1, streamId: 1, flags: 0, consumptionTermId: 0, consumptionTermOffset: 0, receiverWindow: 1, receiverId: 1n });
    sm.writeInt32LE(40, 0);
    expect(() => decodeDatagram(sm)).toThrow(AeronFrameError);
  });

  it('never throws anything but AeronFrameError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.integer({ min: 0, max: 6 }), (bytes, type) => {
        const buf = Buffer.from(bytes);
        if (buf.length >= 8) {
          buf[4] = 0;
          buf.writeInt16LE(type, 6);
        }
        try {
          decodeDatagram(buf);
        } catch (err) {
          expect(err).toBeInstanceOf(AeronFrameError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

import { describe, expect, it } from 'vitest';
import { FrameType, SmFlag, decodeStatusMessage, encodeHeartbeat, encodeSetup } from '../../src/aeron/frame-codec.js';
import { Publication } from '../../src/aeron/publication.js';
import { Receiver } from '../../src/aeron/receiver.js';
import type { PeerAddress } from '../../src/aeron/receiver.js';
import { VECTOR_NAMES, loadVector } from '../helpers/aeron-vectors.js';
import { captureSetup, capturedMessages } from '../helpers/aeron-replay.js';

const PUB: PeerAddress = { address: '127.0.0.1', port: 40000 };

/** Feeds the publisher's side of a capture (what the relay forwarded) to our Receiver in virtual time. */
function replay(name: (typeof VECTOR_NAMES)[number]) {
  const captured = loadVector(name);
  const setup = captureSetup(captured);
  const firstSm = captured.find((d) => d.dir === 'sub->pub' && d.type === FrameType.Sm)!;
  const receiverId = decodeStatusMessage(firstSm.bytes).receiverId;
  const sent: Buffer[] = [];
  const messages: Buffer[] = [];
  const receiver = new Receiver({
    streamId: setup.streamId,
    receiverId,
    send: (d, to) => {
      expect(to).toEqual(PUB);
      sent.push(Buffer.from(d));
    },
    onMessage: (buf, off, len) => messages.push(Buffer.from(buf.subarray(off, off + len))),
  });
  const input = captured.filter((d) => d.dir === 'pub->sub');
  const endUs = (captured.at(-1)?.tUs ?? 0) + 100_000;
  let i = 0;
  for (let tUs = captured[0]!.tUs; tUs <= endUs; tUs += 100) {
    for (; i < input.length && input[i]!.tUs <= tUs; i++) receiver.onDatagram(input[i]!.bytes, input[i]!.bytes.length, PUB, tUs / 1000);
    receiver.doWork(tUs / 1000);
  }
  return { captured, setup, sent, messages, receiver };
}

describe('Receiver replayed against the C driver captures', () => {
  for (const name of VECTOR_NAMES) {
    it(`${name}: first SM equals the C receiver's, every message arrives once in order, EOS is answered`, () => {
      const { captured, setup, sent, messages } = replay(name);
      const theirSms = captured.filter((d) => d.dir === 'sub->pub' && d.type === FrameType.Sm);
      expect(sent[0]?.toString('hex')).toBe(theirSms[0]?.bytes.toString('hex'));
      const expected = capturedMessages(captured);
      expect(messages.length).toBe(expected.length);
      messages.forEach((m, k) => expect(m.equals(expected[k]!.payload)).toBe(true));
      const theirEos = theirSms.find((d) => (d.bytes[5]! & SmFlag.Eos) !== 0)!;
      const ourEos = sent.find((d) => d.readInt16LE(6) === FrameType.Sm && (d[5]! & SmFlag.Eos) !== 0);
      // Same SM apart from the consumption position, which the C receiver schedules on its conductor's
      // cycle (so later, with more consumed); ours is scheduled as soon as a quarter window is consumed.
      const strip = (b: Buffer) => Buffer.concat([b.subarray(0, 16), b.subarray(24)]).toString('hex');
      expect(strip(ourEos!)).toBe(strip(theirEos.bytes));
      const pos = (b: Buffer) => b.readInt32LE(20) + (b.readInt32LE(16) - setup.initialTermId) * setup.termLength;
      expect(pos(ourEos!)).toBeLessThanOrEqual(pos(theirEos.bytes));
      expect(pos(ourEos!)).toBeGreaterThanOrEqual(pos(theirEos.bytes) - Math.min(setup.termLength / 2, 131072) / 4);
    });
  }

  it("fragmented-with-nak: the NAK for the dropped datagram equals the C receiver's", () => {
    const { captured, sent } = replay('fragmented-with-nak');
    const theirNak = captured.find((d) => d.type === FrameType.Nak)!;
    const ourNaks = sent.filter((d) => d.readInt16LE(6) === FrameType.Nak);
    expect(ourNaks.length).toBeGreaterThanOrEqual(1);
    expect(ourNaks[0]?.toString('hex')).toBe(theirNak.bytes.toString('hex'));
  });
});

describe('Receiver behaviour', () => {
  it('asks for a SETUP (S-flag SM, at most once a second) when DATA arrives without an image', () => {
    const sent: Buffer[] = [];
    const r = new Receiver({ streamId: 5, receiverId: 1n, send: (d) => sent.push(d), onMessage: () => undefined });
    const hb = encodeHeartbeat({ sessionId: 77, streamId: 5, termId: 3, termOffset: 0, eos: false });
    r.onDatagram(hb, hb.length, PUB, 0);
    r.onDatagram(hb, hb.length, PUB, 500);
    r.onDatagram(hb, hb.length, PUB, 1001);
    expect(sent.map((d) => decodeStatusMessage(d).flags)).toEqual([SmFlag.SendSetup, SmFlag.SendSetup]);
    const eos = encodeHeartbeat({ sessionId: 78, streamId: 5, termId: 3, termOffset: 0, eos: true });
    r.onDatagram(eos, eos.length, PUB, 0);
    expect(sent.length).toBe(2);
  });

  it('refuses a SETUP with an invalid MTU or term length, and ignores other streams', () => {
    const sent: Buffer[] = [];
    const r = new Receiver({ streamId: 5, receiverId: 1n, send: (d) => sent.push(d), onMessage: () => undefined });
    const base = { flags: 0, termOffset: 0, sessionId: 9, streamId: 5, initialTermId: 0, activeTermId: 0, termLength: 65536, mtu: 1408, ttl: 0 };
    for (const bad of [{ mtu: 1400 }, { termLength: 100000 }, { streamId: 6 }]) {
      const s = encodeSetup({ ...base, ...bad });
      r.onDatagram(s, s.length, PUB, 0);
    }
    expect(r.images.size).toBe(0);
    expect(sent).toEqual([]);
  });

  it('reassembles, detects loss and recovers it through NAKs from a real Publication, delivering once in order', () => {
    let now = 0;
    const toReceiver: Buffer[] = [];
    const pub = new Publication({ sessionId: 4242, streamId: 5, initialTermId: -5, termLength: 65536, mtu: 1408, send: (d) => toReceiver.push(Buffer.from(d)) });
    const got: string[] = [];
    const r = new Receiver({
      streamId: 5,
      receiverId: 3n,
      send: (d) => pub.onControl(d, now),
      onMessage: (b, o, l) => got.push(b.toString('latin1', o, o + l)),
    });
    const want: string[] = [];
    let drop = 0;
    let next = 0;
    for (let step = 0; step < 20_000 && got.length < 400; step++) {
      now += 1;
      while (next < 400) {
        const text = `${next}:`.padEnd(next % 7 === 0 ? 3000 : 90 + (next % 13) * 10, String.fromCharCode(97 + (next % 26)));
        if (pub.offer(Buffer.from(text, 'latin1'), now) < 0) break;
        want.push(text);
        next++;
      }
      pub.doWork(now);
      for (const d of toReceiver.splice(0)) {
        // Every 5th data datagram is lost once, every 7th duplicated.
        if (d.length > 40 && ++drop % 5 === 0) continue;
        r.onDatagram(d, d.length, PUB, now);
        if (drop % 7 === 0) r.onDatagram(d, d.length, PUB, now);
      }
      r.doWork(now);
    }
    expect(got.length).toBe(400);
    expect(got).toEqual(want);
    expect(pub.counters.retransmits).toBeGreaterThan(0);
  });
});

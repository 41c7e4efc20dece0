import { describe, expect, it } from 'vitest';
import { FrameType, SmFlag, decodeRttm, decodeStatusMessage, encodeErr, encodeNak, encodeRttm, encodeStatusMessage } from '../../src/aeron/frame-codec.js';
import { randomSessionId } from '../../src/aeron/aeron-clock.js';
import { OfferResult, Publication } from '../../src/aeron/publication.js';
import { computePosition } from '../../src/aeron/term-math.js';
import { VECTOR_NAMES, loadVector } from '../helpers/aeron-vectors.js';
import { captureSetup, capturedMessages, datagramPosition, isDataDatagram, rebuildLog } from '../helpers/aeron-replay.js';

interface Sent {
  readonly tMs: number;
  readonly bytes: Buffer;
}

/**
 * Replays the receiver's side of a capture against our Publication in virtual time (0.1 ms steps):
 * the C publisher's messages are offered when the capture shows them first, SM/NAKs arrive when the
 * capture shows them, close() when the capture's first EOS heartbeat shows the C publisher closing.
 */
function replay(name: (typeof VECTOR_NAMES)[number]) {
  const captured = loadVector(name);
  const setup = captureSetup(captured);
  const messages = capturedMessages(captured);
  const sent: Sent[] = [];
  let now = 0;
  const pub = new Publication({
    sessionId: setup.sessionId,
    streamId: setup.streamId,
    initialTermId: setup.initialTermId,
    termLength: setup.termLength,
    mtu: setup.mtu,
    send: (d) => sent.push({ tMs: now, bytes: Buffer.from(d) }),
  });
  const firstEos = captured.find((d) => d.dir === 'pub->sub' && d.bytes.length === 32 && d.bytes[5] === 0xe0);
  const control = captured.filter((d) => d.dir === 'sub->pub');
  const startUs = captured[0]?.tUs ?? 0;
  const endUs = (captured[captured.length - 1]?.tUs ?? 0) + 200_000;
  let ci = 0;
  let mi = 0;
  let limitFromSms = 0;
  let closed = false;
  const violations: string[] = [];
  for (let tUs = startUs - 100; tUs <= endUs; tUs += 100) {
    now = tUs / 1000;
    while (ci < control.length && (control[ci]?.tUs ?? Infinity) <= tUs) {
      const c = control[ci++]!;
      if (c.type === FrameType.Sm) {
        const sm = decodeStatusMessage(c.bytes);
        if ((sm.flags & SmFlag.SendSetup) === 0) {
          limitFromSms = Math.max(limitFromSms, computePosition(sm.consumptionTermId, sm.consumptionTermOffset, setup.termLength, setup.initialTermId) + sm.receiverWindow);
        }
      }
      pub.onControl(c.bytes, now);
    }
    // Like the C driver: the client offers as far as its limit allows, the sender sends 2 datagrams
    // per duty cycle, and the client's limit follows the sender between cycles. Offering up to 10 ms
    // ahead of the capture stands in for a client that wrote into its log before its sender sent.
    const before = sent.length;
    for (;;) {
      let progress = 0;
      while (mi < messages.length && (messages[mi]?.tUs ?? Infinity) <= tUs + 10_000) {
        if (pub.offer(messages[mi]!.payload, now) < 0) break;
        mi++;
        progress++;
      }
      if (!closed && firstEos !== undefined && tUs + 100 >= firstEos.tUs && mi === messages.length) {
        pub.close(now);
        closed = true;
      }
      progress += pub.doWork(now, 2);
      if (progress === 0) break;
    }
    for (const s of sent.slice(before)) {
      if (!isDataDatagram(s.bytes)) continue;
      const end = datagramPosition(s.bytes, setup) + s.bytes.length;
      if (end > limitFromSms) violations.push(`datagram ending at ${end} beyond the SM limit ${limitFromSms}`);
      if (s.bytes.length > setup.mtu) violations.push(`datagram of ${s.bytes.length} bytes over the MTU`);
    }
  }
  return { captured, setup, messages, sent, pub, violations, offered: mi };
}

/** Data datagrams in order of first transmission (a datagram at a position already sent is a retransmit). */
function firstTransmissions(datagrams: readonly Buffer[], setup: ReturnType<typeof captureSetup>) {
  const byPosition = new Map<number, Buffer>();
  const again: Buffer[] = [];
  for (const d of datagrams) {
    if (!isDataDatagram(d)) continue;
    const pos = datagramPosition(d, setup);
    if (byPosition.has(pos)) again.push(d);
    else byPosition.set(pos, d);
  }
  return { byPosition, again, first: [...byPosition.values()] };
}

describe('Publication replayed against the C driver captures', () => {
  for (const name of VECTOR_NAMES) {
    it(`${name}: SETUP, DATA datagrams and EOS match the C publisher byte for byte, within flow control`, () => {
      const { captured, setup, messages, sent, pub, violations, offered } = replay(name);
      expect(offered).toBe(messages.length);
      expect(violations).toEqual([]);
      const capturedSetup = captured.find((d) => d.type === FrameType.Setup)!;
      expect(sent[0]?.bytes.equals(capturedSetup.bytes)).toBe(true);

      // Per position, the first datagram sent there (captures can show retransmits of datagrams the
      // relay itself lost, so order of arrival is not order of first sending).
      const theirs = firstTransmissions(
        captured.filter((d) => d.dir !== 'sub->pub').map((d) => d.bytes),
        setup,
      );
      const ours = firstTransmissions(
        sent.map((s) => s.bytes),
        setup,
      );
      const diff: string[] = [];
      for (const [pos, d] of theirs.byPosition) {
        const mine = ours.byPosition.get(pos);
        if (mine === undefined || !mine.equals(d)) diff.push(`@${pos}: theirs ${d.length} B, ours ${mine?.length ?? 'none'}`);
      }
      for (const pos of ours.byPosition.keys()) if (!theirs.byPosition.has(pos)) diff.push(`@${pos}: only ours`);
      expect(diff).toEqual([]);

      // Every retransmission resends exactly the bytes first sent at that position.
      const log = rebuildLog(ours.first, setup);
      for (const r of ours.again) {
        const pos = datagramPosition(r, setup);
        expect(r.subarray(0, log.get(pos)?.length).equals(log.get(pos)!)).toBe(true);
      }

      // The final EOS heartbeat is the C publisher's, and the EOS SM ends the linger.
      const lastTheirs = captured.filter((d) => d.dir === 'pub->sub').at(-1)!;
      const eosOurs = sent.filter((s) => s.bytes.length === 32 && s.bytes[5] === 0xe0);
      expect(eosOurs.length).toBeGreaterThan(0);
      expect(eosOurs.at(-1)?.bytes.equals(lastTheirs.bytes)).toBe(true);
      expect(pub.state).toBe('closed');
    });
  }

  it('fragmented-with-nak: the NAKed datagram is resent, equal to the one the relay dropped', () => {
    const { captured, sent } = replay('fragmented-with-nak');
    const dropped = captured.find((d) => d.dir === 'dropped')!;
    expect(sent.filter((s) => s.bytes.equals(dropped.bytes)).length).toBe(2);
    expect(sent.filter((s) => s.bytes.length === 1408).length).toBe(9 + 1);
  });
});

describe('Publication behaviour in virtual time', () => {
  const base = { sessionId: 12345, streamId: 7, initialTermId: 1000, termLength: 65536, mtu: 1408 } as const;
  const sm = (pub: Publication, pos: number, window = 32768, flags = 0, receiverId = 1n) =>
    encodeStatusMessage({
      flags,
      sessionId: pub.sessionId,
      streamId: pub.streamId,
      consumptionTermId: flags & SmFlag.SendSetup ? 0 : (pub.initialTermId + Math.floor(pos / pub.termLength)) | 0,
      consumptionTermOffset: flags & SmFlag.SendSetup ? 0 : pos % pub.termLength,
      receiverWindow: flags & SmFlag.SendSetup ? 0 : window,
      receiverId,
    });

  function make() {
    const out: Buffer[] = [];
    const pub = new Publication({ ...base, send: (d) => out.push(Buffer.from(d)) });
    return { pub, out };
  }

  it('sends SETUP every 100 ms until an SM, and refuses offers until connected', () => {
    const { pub, out } = make();
    pub.doWork(0);
    pub.doWork(50);
    pub.doWork(100);
    expect(out.map((d) => d.readInt16LE(6))).toEqual([FrameType.Setup, FrameType.Setup]);
    expect(pub.offer(Buffer.from('x'), 100)).toBe(OfferResult.NotConnected);
    pub.onControl(sm(pub, 0), 120);
    expect(pub.isConnected(120)).toBe(true);
    pub.doWork(250);
    expect(out.slice(2).every((d) => d.length === 32 && d.readInt32LE(0) === 0)).toBe(true);
    expect(pub.isConnected(5119)).toBe(true);
    expect(pub.isConnected(5121)).toBe(false);
  });

  it('packs several small frames into one datagram up to the MTU', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0), 0);
    for (let i = 0; i < 20; i++) expect(pub.offer(Buffer.alloc(100, i), 0)).toBeGreaterThan(0);
    out.length = 0;
    pub.doWork(1);
    const data = out.filter((d) => d.length > 32);
    // 100 bytes → 132 → 160 aligned; 8 frames (1280 bytes) fit in 1408.
    expect(data.map((d) => d.length)).toEqual([1280, 1280, 640]);
  });

  it('holds data at the SM limit and resumes when the SM position moves', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0, 4096), 0);
    for (let i = 0; i < 10; i++) pub.offer(Buffer.alloc(1000), 0);
    pub.doWork(1);
    expect(pub.senderPosition).toBeLessThanOrEqual(4096);
    pub.onControl(sm(pub, 4096, 4096), 2);
    pub.doWork(3);
    expect(pub.senderPosition).toBeLessThanOrEqual(8192);
    expect(pub.senderPosition).toBeGreaterThan(4096);
    expect(out.length).toBeGreaterThan(0);
  });

  it('reports back pressure once offers run half a term ahead of the sender', () => {
    const { pub } = make();
    pub.onControl(sm(pub, 0), 0);
    let accepted = 0;
    while (pub.offer(Buffer.alloc(1000), 0) > 0) accepted++;
    expect(pub.offer(Buffer.alloc(1000), 0)).toBe(OfferResult.BackPressured);
    expect(accepted * 1056).toBeLessThanOrEqual(32768);
    expect(accepted).toBeGreaterThan(25);
  });

  it('offerBatch appends a run up to the producer window, byte for byte as single offers would, and refuses as offer does', () => {
    const { pub: one } = make();
    const { pub: run } = make();
    const messages = Array.from({ length: 200 }, (_, i) => Buffer.alloc(100 + i * 7, i));
    expect(run.offerBatch(messages, 0, 0)).toBe(OfferResult.NotConnected);
    one.onControl(sm(one, 0), 0);
    run.onControl(sm(run, 0), 0);
    let single = 0;
    while (single < messages.length && one.offer(messages[single]!, 0) > 0) single++;
    expect(run.offerBatch(messages, 0, 0)).toBe(single);
    expect(single).toBeLessThan(messages.length);
    expect(run.producerPosition).toBe(one.producerPosition);
    expect(run.log.terms[0]!.equals(one.log.terms[0]!)).toBe(true);
    expect(run.offerBatch(messages, single, 0)).toBe(OfferResult.BackPressured);
    expect(run.offerBatch(messages, messages.length, 0)).toBe(0);
    // A message over the maximum stops the run before it, and throws when it comes first.
    const { pub: big } = make();
    big.onControl(sm(big, 0), 0);
    const tooLong = [Buffer.alloc(10), Buffer.alloc(big.maxMessageLength + 1)];
    expect(big.offerBatch(tooLong, 0, 0)).toBe(1);
    expect(() => big.offerBatch(tooLong, 1, 0)).toThrow(/exceeds the maximum/);
    big.close(0);
    expect(big.offerBatch([Buffer.alloc(1)], 0, 0)).toBe(OfferResult.Closed);
  });

  it('ignores an S-flag SM for flow control and rejoins at the last consumed message after a restart', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0), 0);
    for (let i = 0; i < 5; i++) pub.offer(Buffer.alloc(3000, i), 0); // fragmented: 3 frames each
    pub.doWork(1);
    const sentTo = pub.senderPosition;
    // The receiver consumed into the middle of message #2 and then restarted.
    const msg2Start = 2 * (1408 + 1408 + 288);
    pub.onControl(sm(pub, msg2Start + 1408), 2);
    out.length = 0;
    pub.onControl(sm(pub, 0, 0, SmFlag.SendSetup, 2n), 3);
    expect(pub.senderLimit).toBe(msg2Start);
    pub.doWork(4);
    const setup = out.find((d) => d.readInt16LE(6) === FrameType.Setup)!;
    expect(setup.readInt32LE(8)).toBe(msg2Start);
    expect(pub.senderPosition).toBe(msg2Start);
    pub.onControl(sm(pub, msg2Start, 65536, 0, 2n), 5);
    pub.doWork(6);
    expect(pub.senderPosition).toBe(sentTo);
    expect(pub.counters.rewinds).toBe(1);
    // What the sender went back over: from where it had sent to, back to message #2's start.
    expect(pub.counters.rewoundBytes).toBe(sentTo - msg2Start);
  });

  it('several receivers (multicast, multi-destination): paces by the slowest live one and confirms at the lowest position', () => {
    const { pub } = make();
    pub.onControl(sm(pub, 0, 4096, 0, 1n), 0);
    pub.onControl(sm(pub, 0, 4096, 0, 2n), 0);
    for (let i = 0; i < 40; i++) pub.offer(Buffer.alloc(400, i), 0);
    pub.doWork(1);
    expect(pub.senderPosition).toBeLessThanOrEqual(4096);
    // The fast receiver consumed everything sent; the slow one nothing: the window stays the slow one's.
    pub.onControl(sm(pub, pub.senderPosition, 4096, 0, 1n), 2);
    pub.doWork(3);
    expect(pub.senderLimit).toBe(4096);
    expect(pub.senderPosition).toBeLessThanOrEqual(4096);
    expect(pub.confirmedPosition).toBe(0);
    expect(pub.liveReceivers(3)).toBe(2);
    // The slow one moves: both the window and the confirmation follow it.
    pub.onControl(sm(pub, 2048, 4096, 0, 2n), 4);
    pub.doWork(5);
    expect(pub.confirmedPosition).toBe(2048);
    expect(pub.senderLimit).toBe(2048 + 4096);
    // The slow one falls silent: after the 5 s liveness timeout the fast one alone paces and confirms.
    pub.onControl(sm(pub, pub.senderPosition, 4096, 0, 1n), 5004);
    expect(pub.liveReceivers(5006)).toBe(1);
    expect(pub.confirmedPosition).toBe(pub.senderPosition);
    pub.doWork(5006);
    expect(pub.senderPosition).toBeGreaterThan(2048 + 4096);
  });

  it('unicast (one receiver at a time): a new receiver id replaces the old one at once; with several allowed the old one paces until its timeout', () => {
    for (const singleReceiver of [true, false]) {
      const pub = new Publication({ ...base, send: () => undefined, singleReceiver });
      pub.onControl(sm(pub, 0, 4096, 0, 1n), 0);
      for (let i = 0; i < 40; i++) pub.offer(Buffer.alloc(400, i), 0);
      pub.doWork(1);
      pub.onControl(sm(pub, 2048, 4096, 0, 1n), 2);
      pub.doWork(3);
      const sentBefore = pub.senderPosition;
      // Receiver 1's driver restarts: receiver 2 asks for a SETUP, the publication goes back to what
      // 1 reported, and 2 reports from there.
      pub.onControl(sm(pub, 0, 0, SmFlag.SendSetup, 2n), 100);
      pub.doWork(101);
      expect(pub.counters.rewinds).toBe(1);
      pub.onControl(sm(pub, pub.senderPosition, 4096, 0, 2n), 102);
      pub.doWork(102);
      pub.onControl(sm(pub, pub.senderPosition, 4096, 0, 2n), 103);
      pub.doWork(104);
      if (singleReceiver) {
        expect(pub.liveReceivers(104)).toBe(1);
        expect(pub.senderPosition).toBeGreaterThan(sentBefore);
      } else {
        // Receiver 1's last report (2048) holds the window until its 5 s timeout.
        expect(pub.liveReceivers(104)).toBe(2);
        expect(pub.senderLimit).toBe(2048 + 4096);
        expect(pub.liveReceivers(5003)).toBe(1);
      }
    }
  });

  it('drops each receiver at its own liveness timeout, however often offers ask in between', () => {
    const { pub } = make();
    pub.onControl(sm(pub, 0, 32768, 0, 1n), 0);
    pub.onControl(sm(pub, 0, 32768, 0, 2n), 100);
    for (let t = 0; t < 4999; t += 500) expect(pub.offer(Buffer.from('x'), t)).toBeGreaterThan(0);
    expect(pub.liveReceivers(4999)).toBe(2);
    // Receiver 1 (last SM at 0) is gone at 5000, receiver 2 (at 100) still counts until 5100.
    expect(pub.liveReceivers(5001)).toBe(1);
    expect(pub.offer(Buffer.from('x'), 5099)).toBeGreaterThan(0);
    expect(pub.isConnected(5099)).toBe(true);
    expect(pub.offer(Buffer.from('x'), 5101)).toBe(OfferResult.NotConnected);
    // A new SM brings it back, with its own timeout.
    pub.onControl(sm(pub, 0, 32768, 0, 2n), 6000);
    expect(pub.offer(Buffer.from('x'), 10_999)).toBeGreaterThan(0);
    expect(pub.isConnected(11_001)).toBe(false);
  });

  it('keeps the alignment padding after a short frame zero, also where an earlier lap of the partition left bytes', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0, 65536), 0);
    let now = 1;
    // Four laps of the three 64 KiB partitions with 0xff-filled messages, then short messages over the used bytes.
    for (let i = 0; i < 4 * 3 * 64; i++) {
      while (pub.offer(Buffer.alloc(992, 0xff), now) < 0) {
        pub.doWork(now);
        pub.onControl(sm(pub, pub.senderPosition, 65536), now);
        now++;
      }
    }
    pub.doWork(now);
    pub.onControl(sm(pub, pub.senderPosition, 65536), now);
    const from = pub.producerPosition;
    for (let length = 1; length <= 40; length++) pub.offer(Buffer.alloc(length, 0xee), now);
    const term = pub.log.termFor(from);
    let at = from % pub.termLength;
    for (let length = 1; length <= 40; length++) {
      expect(term.readInt32LE(at)).toBe(32 + length);
      const end = at + ((32 + length + 31) & ~31);
      expect(term.subarray(at + 32, at + 32 + length).every((b) => b === 0xee)).toBe(true);
      expect(term.subarray(at + 32 + length, end).every((b) => b === 0)).toBe(true);
      at = end;
    }
    expect(out.length).toBeGreaterThan(0);
  });

  it('a receiver of a dynamic multi-destination channel asking with session 0 gets a SETUP at what every receiver consumed', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0), 0);
    for (let i = 0; i < 5; i++) pub.offer(Buffer.alloc(1000, i), 0);
    pub.doWork(1);
    pub.onControl(sm(pub, 2112), 2); // two whole 1056-byte frames consumed
    out.length = 0;
    const announce = encodeStatusMessage({ flags: SmFlag.SendSetup, sessionId: 0, streamId: 0, consumptionTermId: 0, consumptionTermOffset: 0, receiverWindow: 0, receiverId: 9n });
    pub.onControl(announce, 3);
    pub.doWork(4);
    const setup = out.find((d) => d.readInt16LE(6) === FrameType.Setup);
    expect(setup?.readInt32LE(8)).toBe(2112);
    expect(pub.counters.rewinds).toBe(1);
    // Another stream's announcement (session 0, another stream id) is not for us.
    out.length = 0;
    pub.onControl(encodeStatusMessage({ flags: SmFlag.SendSetup, sessionId: 0, streamId: 8, consumptionTermId: 0, consumptionTermOffset: 0, receiverWindow: 0, receiverId: 9n }), 5);
    pub.onControl(sm(pub, 2112, 32768, 0, 9n), 5);
    pub.doWork(6);
    expect(out.some((d) => d.readInt16LE(6) === FrameType.Setup)).toBe(false);
  });

  it('answers a NAK once within the 10 ms linger and ignores NAKs outside what was sent', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0), 0);
    pub.offer(Buffer.alloc(1000), 0);
    pub.offer(Buffer.alloc(1000), 0);
    pub.doWork(1);
    out.length = 0;
    const nak = encodeNak({ flags: 0, sessionId: pub.sessionId, streamId: pub.streamId, termId: 1000, termOffset: 1056, length: 1056 });
    pub.onControl(nak, 2);
    pub.onControl(nak, 5);
    expect(out.length).toBe(1);
    expect(out[0]?.readInt32LE(8)).toBe(1056);
    pub.onControl(nak, 20);
    expect(out.length).toBe(2);
    pub.onControl(encodeNak({ flags: 0, sessionId: pub.sessionId, streamId: pub.streamId, termId: 1000, termOffset: 4096, length: 32 }), 40);
    pub.onControl(encodeNak({ flags: 0, sessionId: 99, streamId: pub.streamId, termId: 1000, termOffset: 0, length: 32 }), 40);
    expect(out.length).toBe(2);
  });

  it('pads the end of a term and starts the next term at offset 0', () => {
    const { pub } = make();
    pub.onControl(sm(pub, 0, 32768), 0);
    let consumed = 0;
    for (let i = 0; i < 100; i++) {
      while (pub.offer(Buffer.alloc(1000, i), i) < 0) {
        pub.doWork(i);
        consumed = pub.senderPosition;
        pub.onControl(sm(pub, consumed, 32768), i);
      }
    }
    pub.doWork(200);
    const term0 = pub.log.terms[0]!;
    // 62 frames of 1056 end at 65472: the PAD covers the last 64 bytes.
    expect(term0.readInt16LE(65472 + 6)).toBe(FrameType.Pad);
    expect(term0.readInt32LE(65472)).toBe(64);
    expect(pub.log.terms[1]!.readInt32LE(20)).toBe(1001);
  });

  it('closes: sends what is left, EOS heartbeats every 100 ms, ends on the EOS SM or after the linger', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0), 0);
    pub.onControl(sm(pub, 0, 32768, SmFlag.Eos, 9n), 0); // an earlier receiver leaving: no effect on close
    pub.offer(Buffer.from('last words'), 0);
    pub.close(1);
    expect(pub.offer(Buffer.from('too late'), 1)).toBe(OfferResult.Closed);
    out.length = 0;
    pub.doWork(2);
    expect(out.map((d) => d.length)).toEqual([64]);
    pub.doWork(3); // the cycle after the last data: the first EOS heartbeat
    const eos = out.filter((d) => d.length === 32 && d[5] === 0xe0);
    expect(eos.length).toBe(1);
    expect(eos[0]?.readInt32LE(8)).toBe(64);
    pub.doWork(50);
    pub.doWork(103);
    expect(out.filter((d) => d.length === 32 && d[5] === 0xe0).length).toBe(2);
    expect(pub.state).toBe('lingering');
    pub.onControl(sm(pub, 64, 32768, SmFlag.Eos), 150);
    pub.doWork(151);
    expect(pub.state).toBe('closed');

    const other = make();
    other.pub.onControl(sm(other.pub, 0), 0);
    other.pub.close(0);
    other.pub.doWork(1);
    // The linger counts from the end of draining (t = 1), not from close().
    other.pub.doWork(5000);
    expect(other.pub.state).toBe('lingering');
    other.pub.doWork(5001);
    expect(other.pub.state).toBe('closed');
  });

  it('close keeps draining to a slow but connected receiver beyond the linger time, then lingers from the end of draining', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0, 4096), 0);
    for (let i = 0; i < 20; i++) expect(pub.offer(Buffer.alloc(1000, i), 0)).toBeGreaterThan(0);
    const tail = pub.producerPosition;
    pub.close(0);
    // The receiver frees 4 KiB of window per second: draining takes ~5 s, longer than the 5 s linger.
    let t = 0;
    let drainedAt = -1;
    for (; t <= 20_000 && pub.state !== 'closed'; t += 10) {
      if (t % 1000 === 0) pub.onControl(sm(pub, pub.senderPosition, 4096), t);
      pub.doWork(t);
      if (drainedAt < 0 && pub.state === 'lingering') drainedAt = t;
    }
    expect(pub.senderPosition).toBe(tail);
    expect(drainedAt).toBeGreaterThan(5000);
    expect(t - 10).toBeGreaterThanOrEqual(drainedAt + 5000);
    const eos = out.filter((d) => d.length === 32 && d.readInt32LE(0) === 0 && d[5] === 0xe0);
    expect(eos.length).toBeGreaterThan(0);
    expect(eos.every((d) => d.readInt32LE(8) === tail % 65536)).toBe(true);

    // A receiver that goes silent while draining: linger (without EOS) once it counts as gone.
    const gone = make();
    gone.pub.onControl(sm(gone.pub, 0, 4096), 0);
    for (let i = 0; i < 20; i++) gone.pub.offer(Buffer.alloc(1000, i), 0);
    gone.pub.close(0);
    gone.pub.doWork(1);
    gone.pub.doWork(4999);
    expect(gone.pub.state).toBe('draining');
    gone.pub.doWork(5000);
    expect(gone.pub.state).toBe('lingering');
    gone.pub.doWork(9999);
    expect(gone.pub.state).toBe('lingering');
    gone.pub.doWork(10_000);
    expect(gone.pub.state).toBe('closed');
    expect(gone.out.some((d) => d.length === 32 && d[5] === 0xe0)).toBe(false);
  });

  it('rejoins with a 32-aligned SETUP at a message start, even from an SM position inside a frame, and resends identical frames', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0), 0);
    pub.offer(Buffer.alloc(100, 1), 0); // frame [0, 160)
    pub.offer(Buffer.alloc(3000, 2), 0); // fragments [160, 1568) [1568, 2976) [2976, 3264)
    pub.offer(Buffer.alloc(100, 3), 0); // frame [3264, 3424)
    pub.doWork(1);
    const original = Buffer.from(pub.log.terms[0]!.subarray(0, pub.senderPosition));
    const sentTo = pub.senderPosition;
    // Each time the receiver restarts: its last report, an S-flag SM from the new image (a new
    // receiver id), the new image's first SM; the old one's id is gone (an ERR says so at once).
    let id = 1n;
    for (const [reported, expected] of [
      [50, 0], // inside an unfragmented frame
      [160 + 1408 + 100, 160], // inside a middle fragment
      [3264 + 40, 3264], // inside the last, unfragmented frame
    ] as const) {
      pub.onControl(sm(pub, reported, 32768, 0, id), 2);
      out.length = 0;
      pub.onControl(sm(pub, 0, 0, SmFlag.SendSetup, id + 1n), 3);
      pub.onControl(encodeErr({ flags: 0, sessionId: pub.sessionId, streamId: pub.streamId, receiverId: id, groupTag: 0n, errorCode: 0, message: 'gone' }), 3);
      id++;
      pub.doWork(4);
      const setup = out.find((d) => d.readInt16LE(6) === FrameType.Setup)!;
      expect(setup.readInt32LE(8) % 32).toBe(0);
      expect(setup.readInt32LE(8)).toBe(expected);
      pub.onControl(sm(pub, expected, 65536, 0, id), 5);
      out.length = 0;
      pub.doWork(6);
      expect(pub.senderPosition).toBe(sentTo);
      // Whatever goes out again is byte for byte what was sent first, at the same offsets.
      const resent = out.filter((d) => d.length > 32);
      expect(resent[0]?.readInt32LE(8)).toBe(expected);
      for (const d of resent) expect(d.equals(original.subarray(d.readInt32LE(8), d.readInt32LE(8) + d.length))).toBe(true);
    }
  });

  it('answers a NAK naming an offset inside a frame with whole frames from that frame\'s start', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0), 0);
    pub.offer(Buffer.alloc(1000, 1), 0); // [0, 1056)
    pub.offer(Buffer.alloc(1000, 2), 0); // [1056, 2112)
    pub.doWork(1);
    const term = pub.log.terms[0]!;
    out.length = 0;
    pub.onControl(encodeNak({ flags: 0, sessionId: pub.sessionId, streamId: pub.streamId, termId: 1000, termOffset: 1056 + 512, length: 64 }), 2);
    expect(out.length).toBe(1);
    expect(out[0]?.readInt32LE(8)).toBe(1056);
    expect(out[0]?.equals(term.subarray(1056, 2112))).toBe(true);
  });

  it('replies to RTTM with the REPLY flag, treats ERR as the receiver leaving, ignores garbage', () => {
    const { pub, out } = make();
    pub.onControl(sm(pub, 0, 32768, 0, 4n), 0);
    out.length = 0;
    pub.onControl(encodeRttm({ flags: 0x80, sessionId: pub.sessionId, streamId: pub.streamId, echoTimestampNs: 77n, receptionDeltaNs: 3n, receiverId: 4n }), 1);
    pub.onControl(encodeRttm({ flags: 0, sessionId: pub.sessionId, streamId: pub.streamId, echoTimestampNs: 78n, receptionDeltaNs: 3n, receiverId: 4n }), 1);
    expect(out.map((d) => decodeRttm(d))).toEqual([expect.objectContaining({ flags: 0, echoTimestampNs: 77n, receptionDeltaNs: 0n, receiverId: 4n })]);
    pub.onControl(Buffer.from([1, 2, 3]), 2);
    pub.onControl(Buffer.alloc(36), 2);
    expect(pub.isConnected(3)).toBe(true);
    pub.onControl(encodeErr({ flags: 0, sessionId: pub.sessionId, streamId: pub.streamId, receiverId: 4n, groupTag: 0n, errorCode: 13, message: 'rejected' }), 4);
    expect(pub.isConnected(5)).toBe(false);
  });

  it('wraps term ids past INT32_MAX (random initial term id) and keeps positions beyond 2^32 exact', () => {
    const out: Buffer[] = [];
    const pub = new Publication({ ...base, initialTermId: 0x7ffffffe, send: (d) => out.push(Buffer.from(d)) });
    pub.onControl(sm(pub, 0), 0);
    for (let i = 0, t = 0; i < 200; i++) {
      while (pub.offer(Buffer.alloc(1000, i), t) < 0) {
        pub.doWork(t);
        pub.onControl(sm(pub, pub.senderPosition), t++);
      }
    }
    for (let t = 1000; pub.senderPosition < pub.producerPosition; t++) {
      pub.doWork(t);
      pub.onControl(sm(pub, pub.senderPosition), t);
    }
    const termIds = new Set(out.filter((d) => d.length > 32 && d.readInt16LE(6) <= FrameType.Data).map((d) => d.readInt32LE(20)));
    expect([...termIds]).toEqual([0x7ffffffe, 0x7fffffff, -0x80000000, -0x7fffffff]);
    // A NAK naming a wrapped term id is answered from that term.
    out.length = 0;
    pub.onControl(encodeNak({ flags: 0, sessionId: pub.sessionId, streamId: pub.streamId, termId: -0x7fffffff, termOffset: 0, length: 1056 }), 5000);
    expect(out.map((d) => [d.readInt32LE(20), d.readInt32LE(8)])).toEqual([[-0x7fffffff, 0]]);

    // Beyond 2^32 bytes (no bitwise arithmetic on positions): start the log there.
    const far = make();
    const P = 65537 * 65536;
    far.pub.log.tail = P;
    far.pub.senderPosition = P;
    far.pub.onControl(sm(far.pub, P), 0);
    expect(far.pub.senderLimit).toBe(P + 32768);
    for (let i = 0; i < 40; i++) far.pub.offer(Buffer.alloc(1000, i), 0);
    far.pub.doWork(1);
    expect(far.pub.senderPosition).toBe(P + 31 * 1056);
    const first = far.out.find((d) => d.length > 32)!;
    expect([first.readInt32LE(20), first.readInt32LE(8)]).toEqual([(base.initialTermId + 65537) | 0, 0]);
    far.pub.doWork(200);
    const hb = far.out.at(-1)!;
    expect([hb.length, hb.readInt32LE(0), hb.readInt32LE(20), hb.readInt32LE(8)]).toEqual([32, 0, (base.initialTermId + 65537) | 0, 31 * 1056]);
  });

  it('draws session ids outside the reserved range [-1, 1000]', () => {
    const draws = [0.5, 0.5000001, 0.50000005, 0.9];
    let i = 0;
    // 0.5 maps to id 0, which is reserved: the next draw is taken.
    const id = randomSessionId(() => draws[i++] ?? 0.9);
    expect(id < -1 || id > 1000).toBe(true);
    expect(i).toBeGreaterThan(1);
  });
});

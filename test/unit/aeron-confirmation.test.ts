import { describe, expect, it } from 'vitest';
import { FrameType, encodeStatusMessage } from '../../src/aeron/frame-codec.js';
import { Publication } from '../../src/aeron/publication.js';
import { Receiver } from '../../src/aeron/receiver.js';

/**
 * The publication and our receiver (which schedules SM positions like the C image: only after a
 * quarter window of progress) wired back to back in virtual time, 1 ms steps. What a confirmation
 * needs: a status message whose consumption position covers the last message offered.
 */
function wire(options: { padIdleMs?: number } = {}) {
  const toReceiver: Buffer[] = [];
  const toPublication: Buffer[] = [];
  const pub = new Publication({
    sessionId: 4242,
    streamId: 9,
    initialTermId: 77,
    termLength: 65536,
    mtu: 1408,
    send: (d) => toReceiver.push(Buffer.from(d)),
    ...options,
  });
  const received: string[] = [];
  const receiver = new Receiver({
    streamId: 9,
    receiverId: 5n,
    send: (d) => toPublication.push(Buffer.from(d)),
    onMessage: (buf, offset, length) => received.push(buf.toString('latin1', offset, offset + length)),
  });
  const from = { address: '127.0.0.1', port: 1 };
  const wireLog: Buffer[] = [];
  let now = 0;
  const step = (ms: number): void => {
    for (let i = 0; i < ms; i++) {
      now++;
      pub.doWork(now);
      for (const d of toReceiver.splice(0)) {
        wireLog.push(d);
        receiver.onDatagram(d, d.length, from, now);
      }
      receiver.doWork(now);
      for (const d of toPublication.splice(0)) pub.onControl(d, now);
    }
  };
  return { pub, receiver, received, wireLog, step, now: () => now };
}

describe('Aeron confirmation: the receiver reports consumption of the stream\'s quiet tail', () => {
  it('without a request, a short tail is never reported (the receiver\'s quarter-window threshold)', () => {
    const w = wire();
    w.step(300);
    let end = 0;
    for (let i = 0; i < 10; i++) end = w.pub.offer(Buffer.from(`message ${i}`), w.now());
    w.step(2000);
    expect(w.received).toHaveLength(10);
    expect(w.pub.confirmedPosition).toBeLessThan(end);
    expect(w.pub.counters.pads).toBe(0);
  });

  it('a requested report pads once the publication is idle; the next SM covers the batch, and subscribers see no extra message', () => {
    const w = wire();
    w.step(300);
    let end = 0;
    for (let i = 0; i < 10; i++) end = w.pub.offer(Buffer.from(`message ${i}`), w.now());
    w.pub.requestConsumptionReport(end);
    w.step(300);
    expect(w.pub.confirmedPosition).toBeGreaterThanOrEqual(end);
    expect(w.pub.counters.pads).toBe(1);
    expect(w.received).toEqual(Array.from({ length: 10 }, (_, i) => `message ${i}`));
    // The pad crossed the wire as a bare 32-byte PAD header.
    const pads = w.wireLog.filter((d) => d.readInt16LE(6) === FrameType.Pad);
    expect(pads.map((d) => d.length)).toEqual([32]);
    // Offers go on after the pad and are delivered in order.
    let next = 0;
    for (let i = 10; i < 20; i++) next = w.pub.offer(Buffer.from(`message ${i}`), w.now());
    w.pub.requestConsumptionReport(next);
    w.step(300);
    expect(w.pub.confirmedPosition).toBeGreaterThanOrEqual(next);
    expect(w.received).toEqual(Array.from({ length: 20 }, (_, i) => `message ${i}`));
  });

  it('does not pad while offers keep coming, nor when the tail already crosses the threshold', () => {
    const w = wire({ padIdleMs: 50 });
    w.step(300);
    let end = 0;
    for (let t = 0; t < 40; t++) {
      end = w.pub.offer(Buffer.from(`steady ${t}`), w.now());
      w.pub.requestConsumptionReport(end);
      w.step(10);
    }
    expect(w.pub.counters.pads).toBe(0);
    // 20 KiB in one go: more than a quarter of the 32 KiB window past the last report.
    for (let i = 0; i < 20; i++) end = w.pub.offer(Buffer.alloc(1000, 0x61), w.now());
    w.pub.requestConsumptionReport(end);
    w.step(500);
    expect(w.pub.confirmedPosition).toBeGreaterThanOrEqual(end);
    expect(w.pub.counters.pads).toBeLessThanOrEqual(1);
  });

  it('pads across a term boundary without losing or reordering messages', () => {
    const w = wire();
    w.step(300);
    const sent: string[] = [];
    let end = 0;
    // Push the tail close to the end of the first 64 KiB term, with quiet spells that force pads.
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 5; i++) {
        const text = `r${round}-m${i}-${'x'.repeat(900)}`;
        sent.push(text);
        end = w.pub.offer(Buffer.from(text), w.now());
        expect(end).toBeGreaterThan(0);
      }
      w.pub.requestConsumptionReport(end);
      w.step(200);
      expect(w.pub.confirmedPosition).toBeGreaterThanOrEqual(end);
    }
    expect(end).toBeGreaterThan(65536);
    expect(w.received).toEqual(sent);
  });

  it('with several receivers (multicast), confirms what the slowest live one consumed; one that times out stops holding it back', () => {
    const sent: Buffer[] = [];
    const pub = new Publication({ sessionId: 1, streamId: 2, initialTermId: 0, termLength: 65536, mtu: 1408, send: (d) => sent.push(d) });
    const sm = (receiverId: bigint, position: number) =>
      encodeStatusMessage({ flags: 0, sessionId: 1, streamId: 2, consumptionTermId: 0, consumptionTermOffset: position, receiverWindow: 32768, receiverId });
    pub.onControl(sm(1n, 0), 0);
    pub.onControl(sm(2n, 0), 0);
    let end = 0;
    for (let i = 0; i < 10; i++) end = pub.offer(Buffer.alloc(100), 1);
    pub.doWork(1);
    pub.onControl(sm(1n, end), 2);
    expect(pub.confirmedPosition).toBe(0);
    pub.onControl(sm(2n, 640), 3);
    expect(pub.confirmedPosition).toBe(640);
    pub.onControl(sm(2n, end), 4);
    expect(pub.confirmedPosition).toBe(end);
    // Receiver 2 goes silent behind; receiver 1 keeps reporting: after the 5 s liveness, 1 alone counts.
    for (let i = 0; i < 10; i++) end = pub.offer(Buffer.alloc(100), 5);
    pub.doWork(5);
    for (let t = 100; t <= 5200; t += 100) pub.onControl(sm(1n, end), t);
    expect(pub.isConnected(5200)).toBe(true);
    expect(pub.confirmedPosition).toBe(end);
  });
});

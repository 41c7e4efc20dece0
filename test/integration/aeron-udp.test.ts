import { describe, expect, it } from 'vitest';
import { UdpPublication } from '../../src/aeron/udp-publication.js';
import { UdpReceiver } from '../../src/aeron/udp-receiver.js';
import { OfferResult } from '../../src/aeron/publication.js';
import { waitFor } from '../helpers/wait-for.js';


describe('UDP publication → TS receiver on 127.0.0.1', () => {
  it('delivers 20,000 messages of mixed sizes in order, then closes with EOS', async () => {
    const got: Buffer[] = [];
    let unavailable = 0;
    const receiver = await UdpReceiver.open({
      channel: 'aeron:udp?endpoint=127.0.0.1:0',
      streamId: 1001,
      onMessage: (b, o, l) => got.push(Buffer.from(b.subarray(o, o + l))),
      onImage: (e) => {
        if (e === 'unavailable') unavailable++;
      },
    });
    const pub = await UdpPublication.open({ channel: `aeron:udp?endpoint=127.0.0.1:${receiver.port}|term-length=1m`, streamId: 1001 });
    expect(await pub.waitForConnected(5000)).toBe(true);
    const want: Buffer[] = [];
    for (let i = 0; i < 20_000; i++) {
      const msg = Buffer.alloc(i % 100 === 0 ? 5000 : 120, i % 251);
      msg.writeUInt32LE(i, 0);
      for (;;) {
        const r = pub.offer(msg);
        if (r > 0) break;
        expect(r).toBe(OfferResult.BackPressured);
        await pub.waitForProgress(100);
      }
      want.push(msg);
    }
    await pub.close();
    await waitFor(() => got.length >= want.length, { timeoutMs: 10_000, intervalMs: 5, what: 'every message at the receiver' });
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) if (!got[i]!.equals(want[i]!)) throw new Error(`message ${i} differs`);
    expect(pub.publication.state).toBe('closed');
    await waitFor(() => unavailable === 1, { timeoutMs: 5000, intervalMs: 5, what: 'the receiver to see the publication unavailable' });
    await receiver.close();
  }, 30_000);
});

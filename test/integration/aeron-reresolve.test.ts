import { lookup } from 'node:dns/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { UdpPublication } from '../../src/aeron/udp-publication.js';
import { UdpReceiver } from '../../src/aeron/udp-receiver.js';
import { freeUdpPort } from '../helpers/aeron-pipeline.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A publication to a DNS name resolves it again when its receiver falls silent for the liveness
 * timeout, so a receiver that moved (a restarted pod, a changed record) is found again; real UDP
 * sockets, the TS receiver, and the system resolver for `localhost`.
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});


async function receiver(port: number, got: string[]): Promise<UdpReceiver> {
  const r = await UdpReceiver.open({ channel: `aeron:udp?endpoint=127.0.0.1:${port}`, streamId: 5, onMessage: (b, o, l) => got.push(b.toString('utf8', o, o + l)) });
  cleanups.push(() => r.close());
  return r;
}

async function offerAll(pub: UdpPublication, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    while (pub.offer(Buffer.from(`m-${i}`)) <= 0) await pub.waitForConnected(100).then(() => pub.waitForProgress(20));
  }
}

describe('Aeron publication: DNS names resolved again on reconnect', () => {
  it('a name whose record moved: nothing listens at the first address; after the liveness timeout the new one is found', async () => {
    const port = await freeUdpPort();
    const got: string[] = [];
    await receiver(port, got);
    const answers = ['127.0.0.2', '127.0.0.1'];
    const asked: string[] = [];
    const pub = await UdpPublication.open({
      channel: `aeron:udp?endpoint=collector.test:${port}`,
      streamId: 5,
      connectionTimeoutMs: 300,
      lookup: async (host) => {
        asked.push(host);
        return answers[Math.min(asked.length - 1, answers.length - 1)] as string;
      },
    });
    cleanups.push(() => pub.abort());
    expect(pub.destinations.targets.map((d) => d.address)).toEqual(['127.0.0.2']);
    expect(await pub.waitForConnected(5000)).toBe(true);
    expect(asked).toEqual(['collector.test', 'collector.test']);
    expect(pub.reResolutions).toBe(1);
    await offerAll(pub, 0, 100);
    await waitFor(() => got.length === 100, { timeoutMs: 5000, what: 'every message' });
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => `m-${i}`));
  });

  it('localhost through the system resolver: looked up again while the receiver is away, and the restarted receiver gets the rest', async () => {
    const port = await freeUdpPort();
    const got: string[] = [];
    let r = await receiver(port, got);
    const asked: string[] = [];
    const pub = await UdpPublication.open({
      channel: `aeron:udp?endpoint=localhost:${port}`,
      streamId: 5,
      connectionTimeoutMs: 300,
      lookup: async (host, family) => {
        asked.push(host);
        return (await lookup(host, { family })).address;
      },
    });
    cleanups.push(() => pub.abort());
    await offerAll(pub, 0, 50);
    await waitFor(() => got.length === 50, { timeoutMs: 5000, what: 'the first messages' });
    expect(asked).toEqual(['localhost']);
    await r.close();
    await waitFor(() => !pub.isConnected(), { timeoutMs: 5000, what: 'the receiver noticed gone' });
    await waitFor(() => asked.length >= 2, { timeoutMs: 5000, what: 'a second lookup' });
    r = await receiver(port, got);
    await offerAll(pub, 50, 50);
    await waitFor(() => new Set(got).size === 100, { timeoutMs: 5000, what: 'every message' });
    expect(pub.destinations.targets.map((d) => d.address)).toEqual(['127.0.0.1']);
  });
});

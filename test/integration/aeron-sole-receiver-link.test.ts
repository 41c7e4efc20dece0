import { afterEach, describe, expect, it } from 'vitest';
import { UdpPublication } from '../../src/aeron/udp-publication.js';
import { UdpReceiver } from '../../src/aeron/udp-receiver.js';
import { freeUdpPort } from '../helpers/aeron-pipeline.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A unicast publication connects its socket to its receiver once the receiver answers from the address
 * data goes to, and lets go when it falls silent or moves; a receiver that answers from another
 * address is still heard (the socket stays unconnected). Real UDP sockets and the TS receiver.
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(host: string, port: number, got: string[]): Promise<UdpReceiver> {
  const r = await UdpReceiver.open({ channel: `aeron:udp?endpoint=${host}:${port}`, streamId: 7, onMessage: (b, o, l) => got.push(b.toString('utf8', o, o + l)) });
  cleanups.push(() => r.close());
  return r;
}

async function offerAll(pub: UdpPublication, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    while (pub.offer(Buffer.from(`m-${i}`)) <= 0) await pub.waitForConnected(100).then(() => pub.waitForProgress(20));
  }
}

const range = (from: number, count: number): string[] => Array.from({ length: count }, (_, i) => `m-${from + i}`);

describe('Aeron publication: the socket connected to its sole receiver', () => {
  it('connects once the receiver answers, delivers through the connected socket, and lets go while it is away', async () => {
    const port = await freeUdpPort();
    const got: string[] = [];
    let r = await receiver('127.0.0.1', port, got);
    const pub = await UdpPublication.open({ channel: `aeron:udp?endpoint=127.0.0.1:${port}`, streamId: 7, connectionTimeoutMs: 300 });
    cleanups.push(() => pub.abort());
    expect(await pub.waitForConnected(5000)).toBe(true);
    expect(pub.link.connected).toBe(true);
    await offerAll(pub, 0, 200);
    await waitFor(() => got.length === 200, { timeoutMs: 5000, what: 'the first 200 messages' });
    expect(got).toEqual(range(0, 200));

    await r.close();
    await waitFor(() => !pub.isConnected(), { timeoutMs: 5000, what: 'the receiver noticed gone' });
    await waitFor(() => !pub.link.connected, { timeoutMs: 1000, what: 'the socket disconnected' });
    r = await receiver('127.0.0.1', port, got);
    await offerAll(pub, 200, 200);
    await waitFor(() => new Set(got).size === 400, { timeoutMs: 5000, what: 'every message' });
    expect(pub.link.connected).toBe(true);
    expect(pub.link.connects).toBe(2);
  });

  it('a receiver that moved: the connected socket lets go, the name resolves to the new address, and the socket connects there', async () => {
    const port = await freeUdpPort();
    const first: string[] = [];
    const second: string[] = [];
    const r1 = await receiver('127.0.0.1', port, first);
    let moved = false;
    const pub = await UdpPublication.open({
      channel: `aeron:udp?endpoint=collector.test:${port}`,
      streamId: 7,
      connectionTimeoutMs: 300,
      lookup: async () => (moved ? '127.0.0.2' : '127.0.0.1'),
    });
    cleanups.push(() => pub.abort());
    await offerAll(pub, 0, 100);
    await waitFor(() => first.length === 100, { timeoutMs: 5000, what: 'the messages at the first address' });
    expect(pub.link.connected).toBe(true);

    moved = true;
    await r1.close();
    await receiver('127.0.0.2', port, second);
    await waitFor(() => pub.destinations.targets[0]?.address === '127.0.0.2', { timeoutMs: 5000, what: 'the name resolved again' });
    await offerAll(pub, 100, 100);
    // The new receiver joins at the publication's current position: it gets what was offered after.
    await waitFor(() => second.includes('m-199'), { timeoutMs: 5000, what: 'the messages at the new address' });
    expect(pub.link.connected).toBe(true);
    expect(pub.link.connects).toBe(2);
  });

  it('a receiver answering from another address than data goes to is heard on the unconnected socket', async () => {
    const port = await freeUdpPort();
    const got: string[] = [];
    // Bound to every address: data to 127.0.0.2 arrives, and its replies leave from 127.0.0.1.
    await receiver('0.0.0.0', port, got);
    const pub = await UdpPublication.open({ channel: `aeron:udp?endpoint=127.0.0.2:${port}`, streamId: 7 });
    cleanups.push(() => pub.abort());
    await offerAll(pub, 0, 300);
    await waitFor(() => got.length === 300, { timeoutMs: 5000, what: 'every message' });
    expect(got).toEqual(range(0, 300));
    expect(pub.link.connected).toBe(false);
    expect(pub.link.connects).toBe(0);
  });

  it('connectSocket: false keeps the socket unconnected', async () => {
    const port = await freeUdpPort();
    const got: string[] = [];
    await receiver('127.0.0.1', port, got);
    const pub = await UdpPublication.open({ channel: `aeron:udp?endpoint=127.0.0.1:${port}`, streamId: 7, connectSocket: false });
    cleanups.push(() => pub.abort());
    await offerAll(pub, 0, 100);
    await waitFor(() => got.length === 100, { timeoutMs: 5000, what: 'every message' });
    expect(pub.link.connected).toBe(false);
  });
});

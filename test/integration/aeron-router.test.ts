import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { UdpReceiver } from '../../src/aeron/udp-receiver.js';
import { aeronOutputSchema } from '../../src/config/aeron-config.js';
import { AeronRouter } from '../../src/emitters/aeron-router.js';
import { lineNumber, makeBatches } from '../helpers/aeron-batches.js';
import { freeUdpPort } from '../helpers/aeron-pipeline.js';
import { waitFor } from '../helpers/wait-for.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(port: number, got: number[]): Promise<UdpReceiver> {
  const r = await UdpReceiver.open({
    channel: `aeron:udp?endpoint=127.0.0.1:${port}`,
    streamId: 10,
    onMessage: (b, o, l) => got.push(lineNumber(b.subarray(o, o + l))),
  });
  cleanups.push(() => r.close());
  return r;
}

describe('Aeron router over real UDP', () => {
  it('a batch retried because one publication had no receiver is not offered again to the publication that took it: each receiver gets each entry once', async () => {
    const [upPort, downPort] = [await freeUdpPort(), await freeUdpPort()];
    const up: number[] = [];
    const down: number[] = [];
    await receiver(upPort, up);
    const config = aeronOutputSchema.parse(
      [upPort, downPort].map((port) => ({ channel: `aeron:udp?endpoint=127.0.0.1:${port}|term-length=1m`, stream_id: 10, publication_timeout: '300ms' })),
    );
    const registry = new Registry();
    const router = new AeronRouter(config, { registry, lingerMs: 500 });
    cleanups.push(() => router.close());
    const [batch] = makeBatches(1, 200);

    const first = await router.emit(batch!, new AbortController().signal);
    expect(first.kind).toBe('retryable');
    // The first publication took its part (its confirmation is held by the router); the second had nobody.
    await waitFor(() => up.length >= 200, { timeoutMs: 10_000, intervalMs: 10, what: 'the first publication\'s part' });

    await receiver(downPort, down);
    let second = await router.emit(batch!, new AbortController().signal);
    for (let attempt = 0; second.kind === 'retryable' && attempt < 20; attempt++) second = await router.emit(batch!, new AbortController().signal);
    expect(second.kind).toBe('ok');
    if (second.kind === 'ok') expect(await second.confirmed).toBe(true);
    await waitFor(() => down.length >= 200, { timeoutMs: 10_000, intervalMs: 10, what: 'the second publication\'s part' });

    const all = Array.from({ length: 200 }, (_, i) => i);
    expect(up).toEqual(all);
    expect(down).toEqual(all);
    const sent = (await registry.getMetricsAsJSON()).find((m) => m.name === 'mega_aggregator_aeron_messages_sent_total')?.values ?? [];
    expect(sent.map((v) => v.value)).toEqual([200, 200]);
  }, 30_000);
});

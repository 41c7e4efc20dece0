import { createSocket } from 'node:dgram';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, decodeSetup, encodeStatusMessage } from '../../src/aeron/frame-codec.js';
import { UdpReceiver } from '../../src/aeron/udp-receiver.js';
import { Batcher } from '../../src/batcher/batcher.js';
import { parseAeronConfiguration } from '../../src/config/aeron-config.js';
import { createAeronEmitter } from '../../src/emitters/aeron-emitter.js';
import type { AeronEmitter } from '../../src/emitters/aeron-emitter.js';
import { Spool } from '../../src/spool/spool.js';
import { EntryBatchWriter, RunHead, encodeBatchHeader } from '../../src/wire/entry-batch.js';
import { lineNumber } from '../helpers/aeron-batches.js';
import { waitFor } from '../helpers/wait-for.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A receiver written with the codec alone whose subscriber never reads: SMs grant a window and report consumption 0. */
async function stalledReceiver(): Promise<{ port: number; close: () => Promise<void> }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  let setup: ReturnType<typeof decodeSetup> | undefined;
  sock.on('message', (msg, rinfo) => {
    const type = msg.readInt16LE(6);
    if (type === FrameType.Setup) setup = decodeSetup(msg);
    if ((type !== FrameType.Setup && type !== FrameType.Data) || setup === undefined) return;
    const s = setup;
    sock.send(
      encodeStatusMessage({ flags: 0, sessionId: s.sessionId, streamId: s.streamId, consumptionTermId: s.initialTermId, consumptionTermOffset: 0, receiverWindow: 512 * 1024, receiverId: 3n }),
      rinfo.port,
      rinfo.address,
    );
  });
  return { port: sock.address().port, close: () => new Promise<void>((r) => sock.close(() => r())) };
}

const metric = async (registry: Registry, name: string): Promise<number> => (await registry.getMetricsAsJSON()).find((m) => m.name === name)?.values[0]?.value ?? 0;

describe('Aeron emitter across an aggregator restart', () => {
  it('entries sent and never confirmed before the restart are sent again and counted as resent; new entries are not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mc-aeron-resend-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const head = new RunHead('/var/log/a.log', 'f1');
    const writer = new EntryBatchWriter(encodeBatchHeader('c1', []));
    let n = 0;
    const append = async (spool: Spool, count: number): Promise<void> => {
      for (let i = 0; i < count; i++, n++) {
        const line = Buffer.from(`line-${n} `.padEnd(120, 'y'));
        writer.addLine(head, line, 0, line.length, n * 120, BigInt(n));
        if (writer.entryCount === 100) await spool.append(writer.finish(), 100);
      }
    };
    const stalled = await stalledReceiver();
    const channel = `aeron:udp?endpoint=127.0.0.1:${stalled.port}|term-length=1m`;
    const run = async (registry: Registry): Promise<{ spool: Spool; emitter: AeronEmitter; batcher: Batcher }> => {
      const spool = await Spool.open({ dir, maxBytes: 64 * 1024 * 1024 });
      const emitter = createAeronEmitter(parseAeronConfiguration(JSON.stringify({ channel, stream_id: 5 })), { registry, stateDir: dir, lingerMs: 200 });
      const batcher = new Batcher({ spool, emitter, maxBatchSize: 200, maxDelayMs: 20 });
      batcher.start();
      return { spool, emitter, batcher };
    };

    // First process: 1000 entries sent, none confirmed (the subscriber never reads); then it stops.
    const before = new Registry();
    const first = await run(before);
    await append(first.spool, 1000);
    await waitFor(async () => (await metric(before, 'mega_aggregator_aeron_messages_sent_total')) === 1000, { timeoutMs: 15_000, intervalMs: 10, what: '1000 entries sent' });
    // Offered is counted; sent follows on the publication's next duty cycle.
    const pub = first.emitter.udpPublication!.publication;
    await waitFor(() => pub.senderPosition === pub.producerPosition, { timeoutMs: 10_000, intervalMs: 10, what: 'everything offered sent' });
    await first.batcher.stop(300);
    first.emitter.udpPublication?.abort();
    await first.emitter.close();
    await first.spool.close();
    await stalled.close();
    expect((await readdir(dir)).some((f) => f.startsWith('aeron-unconfirmed-'))).toBe(true);

    // Second process on the same spool, a subscriber that reads on the same channel.
    const seen: number[] = [];
    const receiver = await UdpReceiver.open({ channel, streamId: 5, onMessage: (b, o, l) => seen.push(lineNumber(b.subarray(o, o + l))) });
    cleanups.push(() => receiver.close());
    const after = new Registry();
    const second = await run(after);
    cleanups.push(async () => {
      await second.batcher.stop(1000);
      await second.emitter.close();
      await second.spool.close();
    });
    expect(await metric(after, 'mega_aggregator_aeron_restart_resent_entries_total')).toBe(0);
    await waitFor(() => seen.length >= 1000, { timeoutMs: 15_000, intervalMs: 10, what: 'the 1000 unconfirmed entries sent again' });
    await append(second.spool, 500);
    await waitFor(() => seen.length >= 1500, { timeoutMs: 15_000, intervalMs: 10, what: '500 new entries' });
    await waitFor(() => second.batcher.stats().pending === 0, { timeoutMs: 15_000, intervalMs: 10, what: 'everything confirmed' });

    expect(seen).toEqual(Array.from({ length: 1500 }, (_, i) => i));
    expect(await metric(after, 'mega_aggregator_aeron_messages_sent_total')).toBe(1500);
    expect(await metric(after, 'mega_aggregator_aeron_restart_resent_entries_total')).toBe(1000);
  }, 60_000);
});

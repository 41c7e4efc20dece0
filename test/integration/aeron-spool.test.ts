import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UdpReceiver } from '../../src/aeron/udp-receiver.js';
import { restartablePort } from '../helpers/free-port.js';
import { Batcher } from '../../src/batcher/batcher.js';
import { parseAeronConfiguration } from '../../src/config/aeron-config.js';
import { createAeronEmitter } from '../../src/emitters/aeron-emitter.js';
import type { BatchEvent } from '../../src/batcher/batcher.js';
import { Spool } from '../../src/spool/spool.js';
import { EntryBatchWriter, RunHead, encodeBatchHeader } from '../../src/wire/entry-batch.js';
import { lineNumber } from '../helpers/aeron-batches.js';
import { waitFor } from '../helpers/wait-for.js';


describe('Spool → Batcher → Aeron emitter, receiver away and back', () => {
  it('keeps batches in the spool while no receiver is connected and delivers every entry once it returns', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mc-aeron-spool-'));
    const seen = new Set<number>();
    const rx = (port: number) =>
      UdpReceiver.open({ channel: `aeron:udp?endpoint=127.0.0.1:${port}`, streamId: 3, onMessage: (b, o, l) => seen.add(lineNumber(b.subarray(o, o + l))) });
    // A port it can come back to: one from port 0 may be handed to another test's receiver meanwhile.
    let receiver = await rx(await restartablePort('udp'));
    const port = receiver.port;
    const spool = await Spool.open({ dir, maxBytes: 64 * 1024 * 1024 });
    const emitter = createAeronEmitter(
      parseAeronConfiguration(JSON.stringify({ channel: `aeron:udp?endpoint=127.0.0.1:${port}|term-length=64k`, stream_id: 3, publication_timeout: '200ms' })),
      { connectionTimeoutMs: 400, lingerMs: 2000 },
    );
    const results: BatchEvent['result']['kind'][] = [];
    const batcher = new Batcher({ spool, emitter, maxBatchSize: 200, maxDelayMs: 20, onBatch: (e) => results.push(e.result.kind) });
    batcher.start();
    const head = new RunHead('/var/log/a.log', 'f1');
    const writer = new EntryBatchWriter(encodeBatchHeader('c1', []));
    let n = 0;
    const append = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++, n++) {
        const line = Buffer.from(`line-${n} `.padEnd(120, 'y'));
        writer.addLine(head, line, 0, line.length, n * 120, BigInt(n));
        if (writer.entryCount === 100) await spool.append(writer.finish(), 100);
      }
    };
    await append(3000);
    await waitFor(() => seen.size === 3000, { timeoutMs: 15_000, intervalMs: 10, what: 'the first 3000 lines' });

    await receiver.close(); // gone without EOS
    await append(3000);
    await waitFor(() => results.includes('retryable'), { timeoutMs: 15_000, intervalMs: 10, what: 'a retryable result while the receiver is away' });
    expect(batcher.stats().pending).toBeGreaterThan(0);
    receiver = await rx(port);
    await waitFor(() => seen.size === 6000, { timeoutMs: 20_000, intervalMs: 10, what: 'every line after the receiver returned' });
    await batcher.stop(5000);
    await emitter.close();
    await receiver.close();
    await spool.close();
    expect([...seen].sort((a, b) => a - b).every((v, i) => v === i)).toBe(true);
    expect(results.filter((k) => k === 'fatal')).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  }, 60_000);
});

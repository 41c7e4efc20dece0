/**
 * Aeron publication → TypeScript receiver on loopback: messages/s and MiB/s for 120-byte and 4 KiB
 * messages, at the default MTU 1408 and at MTU 8192. The receiver runs in a worker thread (the second
 * core, as a separate receiving host would be); the publication offers as fast as flow control allows.
 *   node dist/bench/aeron-bench.js [count120=1000000] [count4k=100000]
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { OfferResult } from '../src/aeron/publication.js';
import { UdpPublication } from '../src/aeron/udp-publication.js';
import { UdpReceiver } from '../src/aeron/udp-receiver.js';
import { parseAeronConfiguration } from '../src/config/aeron-config.js';
import { createAeronEmitter } from '../src/emitters/aeron-emitter.js';
import type { Batch } from '../src/emitters/emitter.js';
import { EntryBatchWriter, RunHead, decodeEntries, encodeBatchHeader } from '../src/wire/entry-batch.js';
import { arrayBatch } from '../src/emitters/array-batch.js';
import { printDriverBenches } from './aeron-driver-bench.js';
import { positionalArgs } from './positional-args.js';

export interface AeronBenchCase {
  readonly messageBytes: number;
  readonly count: number;
  readonly mtu: number;
  readonly termLength?: number;
}

export interface AeronBenchResult extends AeronBenchCase {
  readonly seconds: number;
  readonly messagesPerSecond: number;
  readonly mibPerSecond: number;
  readonly retransmits: number;
  readonly datagrams: number;
}

interface WorkerInput {
  readonly aeronBenchReceiver: true;
  readonly expected: number;
  readonly streamId: number;
  /** Messages start with their sequence number as a u32 (publication cases). */
  readonly checkOrder: boolean;
}

type WorkerMessage = { kind: 'ready'; port: number } | { kind: 'done'; count: number; bytes: number; errors: number };

async function receiverWorker(input: WorkerInput): Promise<void> {
  let count = 0;
  let bytes = 0;
  let errors = 0;
  let next = 0;
  const receiver = await UdpReceiver.open({
    channel: 'aeron:udp?endpoint=127.0.0.1:0',
    streamId: input.streamId,
    onMessage: (buf, offset, length) => {
      // Checks order without allocating: every message starts with its sequence number.
      if (input.checkOrder && buf.readUInt32LE(offset) !== next) errors++;
      next++;
      count++;
      bytes += length;
      if (count === input.expected) {
        parentPort?.postMessage({ kind: 'done', count, bytes, errors } satisfies WorkerMessage);
        void receiver.close();
      }
    },
  });
  parentPort?.postMessage({ kind: 'ready', port: receiver.port } satisfies WorkerMessage);
}

function startReceiverWorker(expected: number, streamId: number, checkOrder: boolean): { worker: Worker; done: Promise<WorkerMessage>; port: Promise<number> } {
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { aeronBenchReceiver: true, expected, streamId, checkOrder } satisfies WorkerInput });
  const done = new Promise<WorkerMessage>((resolve, reject) => {
    worker.on('message', (m: WorkerMessage) => {
      if (m.kind === 'done') resolve(m);
    });
    worker.once('error', reject);
  });
  const port = new Promise<number>((resolve) => {
    worker.on('message', (m: WorkerMessage) => {
      if (m.kind === 'ready') resolve(m.port);
    });
  });
  return { worker, done, port };
}

export interface AeronEmitterBenchResult {
  readonly entries: number;
  readonly batchSize: number;
  readonly seconds: number;
  readonly entriesPerSecond: number;
}

/** The emitter (raw format) on top of the publication: batches of decoded entries → TS receiver. */
export async function runAeronEmitterBench(entries = 1_000_000, batchSize = 1000): Promise<AeronEmitterBenchResult> {
  const streamId = 1002;
  const { worker, done, port } = startReceiverWorker(entries, streamId, false);
  const config = parseAeronConfiguration(JSON.stringify({ channel: `aeron:udp?endpoint=127.0.0.1:${await port}`, stream_id: streamId }));
  const emitter = createAeronEmitter(config, { lingerMs: 1000 });
  await emitter.start();
  const head = new RunHead('/var/log/bench.log', 'bench');
  const writer = new EntryBatchWriter(encodeBatchHeader('bench', []));
  const batches: Batch[] = [];
  const line = Buffer.alloc(120, 0x62);
  for (let n = 0; n < entries; n += batchSize) {
    for (let i = 0; i < batchSize; i++) writer.addLine(head, line, 0, line.length, (n + i) * 121, 0n);
    batches.push(arrayBatch(batches.length + 1, decodeEntries(writer.finish())));
  }
  const signal = new AbortController().signal;
  const start = performance.now();
  for (const b of batches) {
    const r = await emitter.emit(b, signal);
    if (r.kind !== 'ok') throw new Error(`emit failed: ${r.kind}`);
  }
  await done;
  const seconds = (performance.now() - start) / 1000;
  await worker.terminate();
  emitter.udpPublication?.abort();
  return { entries, batchSize, seconds, entriesPerSecond: entries / seconds };
}

export async function runAeronBenchCase(c: AeronBenchCase): Promise<AeronBenchResult> {
  const streamId = 1001;
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { aeronBenchReceiver: true, expected: c.count, streamId, checkOrder: true } satisfies WorkerInput });
  const messages = new Promise<WorkerMessage>((resolve, reject) => {
    worker.on('message', (m: WorkerMessage) => {
      if (m.kind === 'done') resolve(m);
    });
    worker.once('error', reject);
  });
  const port = await new Promise<number>((resolve) => {
    const onReady = (m: WorkerMessage): void => {
      if (m.kind === 'ready') {
        worker.off('message', onReady);
        resolve(m.port);
      }
    };
    worker.on('message', onReady);
  });
  const pub = await UdpPublication.open({
    channel: `aeron:udp?endpoint=127.0.0.1:${port}|mtu=${c.mtu}`,
    streamId,
    termLength: c.termLength ?? 16 * 1024 * 1024,
  });
  if (!(await pub.waitForConnected(5000))) throw new Error('bench receiver did not connect');
  const msg = Buffer.alloc(c.messageBytes, 0x61);
  const start = performance.now();
  for (let i = 0; i < c.count; i++) {
    msg.writeUInt32LE(i, 0);
    for (;;) {
      const r = pub.offer(msg);
      if (r > 0) break;
      if (r !== OfferResult.BackPressured) throw new Error(`offer failed: ${r}`);
      await pub.waitForProgress(1000);
    }
  }
  const done = await messages;
  const seconds = (performance.now() - start) / 1000;
  await worker.terminate();
  const counters = pub.publication.counters;
  pub.abort();
  if (done.kind !== 'done' || done.errors !== 0) throw new Error(`receiver saw ${done.kind === 'done' ? done.errors : '?'} out-of-order messages`);
  return {
    ...c,
    seconds,
    messagesPerSecond: c.count / seconds,
    mibPerSecond: (c.count * c.messageBytes) / seconds / (1024 * 1024),
    retransmits: counters.retransmits,
    datagrams: counters.datagramsSent,
  };
}

export async function runAeronBench(count120 = 1_000_000, count4k = 100_000): Promise<AeronBenchResult[]> {
  const cases: AeronBenchCase[] = [
    { messageBytes: 120, count: count120, mtu: 1408 },
    { messageBytes: 4096, count: count4k, mtu: 1408 },
    { messageBytes: 120, count: count120, mtu: 8192 },
    { messageBytes: 4096, count: count4k, mtu: 8192 },
  ];
  const results: AeronBenchResult[] = [];
  for (const c of cases) results.push(await runAeronBenchCase(c));
  return results;
}

function format(r: AeronBenchResult): string {
  return `${String(r.messageBytes).padStart(5)} B  mtu ${String(r.mtu).padStart(5)}  ${String(r.count).padStart(8)} msgs  ${r.seconds.toFixed(2).padStart(6)} s  ${Math.round(r.messagesPerSecond).toLocaleString('en-US').padStart(10)} msgs/s  ${r.mibPerSecond.toFixed(1).padStart(7)} MiB/s  (${r.datagrams} datagrams, ${r.retransmits} retransmits)`;
}

if (!isMainThread && (workerData as Partial<WorkerInput> | undefined)?.aeronBenchReceiver === true) {
  void receiverWorker(workerData as WorkerInput);
} else if (isMainThread && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [count120, count4k] = positionalArgs('usage: node dist/bench/aeron-bench.js [count120=1000000] [count4k=100000]', [
    { name: 'count120', fallback: 1_000_000 },
    { name: 'count4k', fallback: 100_000 },
  ]) as [number, number];
  console.log('aeron publication → TS receiver (worker thread), 127.0.0.1, term 16 MiB, receiver window 128 KiB');
  for (const r of await runAeronBench(count120, count4k)) console.log(format(r));
  const e = await runAeronEmitterBench(count120, 1000);
  console.log(
    `emitter raw, batches of ${e.batchSize} × 120 B: ${e.entries} entries ${e.seconds.toFixed(2)} s  ${Math.round(e.entriesPerSecond).toLocaleString('en-US')} entries/s  ${((e.entriesPerSecond * 120) / 1024 / 1024).toFixed(1)} MiB/s`,
  );
  // Against the real C media driver when it is beside the project (skipped with the reason otherwise).
  await printDriverBenches(count120);
}

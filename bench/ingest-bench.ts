/**
 * The aggregator's ingest capacity, alone: a light load generator (this process) opens `streams`
 * concurrent Ingest.Ship streams over real gRPC on loopback, each on its own channel as separate
 * collectors would, and sends chunks that were encoded BEFORE the clock starts (the EntryBatch and the
 * Chunk message around it, handed to grpc-js as bytes with an identity serializer), so no collector's
 * CPU hides the aggregator's. The real aggregator (durable spool, fsync'd acks, file emitter) takes
 * them; its CPU comes from /proc/<pid>/stat, counted from the first chunk sent to the last line
 * emitted. Every line is unique (stream s carries lines s*n/streams ...) and the file emitter's output
 * is checked line for line: a lost, duplicated or changed line fails the run.
 *
 *   node dist/bench/ingest-bench.js [streams=10] [lines=1000000] [lineBytes=120] [chunkBytes=1048576]
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AckCode, SHIP_METHOD, loadIngestApi } from '../src/wire/grpc-api.js';
import type { AckMessage } from '../src/wire/grpc-api.js';
import { EntryBatchWriter, RunHead, encodeBatchHeader } from '../src/wire/entry-batch.js';
import { LineTime } from '../src/wire/line-time.js';
import { fillLine, isExact, verifyOutput } from './corpus.js';
import type { LineCount } from './corpus.js';
import { scrapeMetric } from '../support/metrics-text.js';
import { startBenchAggregator } from './e2e-bench.js';
import { formatPeaks, sampleMemory } from './memory-sampler.js';
import type { MemoryPeaks } from './memory-sampler.js';
import { cpuSeconds, peakRssMiB } from './proc-stats.js';
import { waitForSize } from './wait-for-size.js';
import { positionalArgs } from './positional-args.js';

/** Chunk bytes a stream may have sent and not yet seen acknowledged (the collector allows 64 MiB). */
const STREAM_WINDOW_BYTES = 8 * 1024 * 1024;

export interface IngestResult {
  readonly streams: number;
  readonly lines: number;
  readonly lineBytes: number;
  /** First chunk sent → every chunk acknowledged OK (durable in the spool). */
  readonly ackSeconds: number;
  /** First chunk sent → the last line in the file emitter's output. */
  readonly seconds: number;
  readonly linesPerSecond: number;
  /** The aggregator's user + system CPU over `seconds`. */
  readonly aggregatorCpuSeconds: number;
  readonly aggregatorCpuPerMillion: number;
  readonly aggregatorPeakRssMiB: number;
  /** This process (the load generator and the output polling), to show it stayed light. */
  readonly generatorCpuSeconds: number;
  /** BENCH_MEMORY_BREAKDOWN=1: the aggregator's heap and Buffers, and the peak of its in-flight chunk bytes. */
  readonly memory?: { readonly peaks: MemoryPeaks; readonly inflightPeakMiB: number };
  readonly count: LineCount;
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v > 0x7f) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** A serialized `Chunk { sequence = 1; entries = 2; entry_count = 3 }` (api/api.proto). */
function encodeChunkMessage(sequence: number, entries: Buffer, entryCount: number): Buffer {
  return Buffer.concat([Buffer.from([0x08]), varint(sequence), Buffer.from([0x12]), varint(entries.length), entries, Buffer.from([0x18]), varint(entryCount)]);
}

/**
 * The Chunk messages of one stream: lines firstSeq ... firstSeq + lines - 1, cut at about `chunkBytes`,
 * encoded as the collector encodes what it reads (runs of lines as LineBlocks).
 */
export function encodeStream(stream: number, firstSeq: number, lines: number, lineBytes: number, chunkBytes: number): Buffer[] {
  const writer = new EntryBatchWriter(encodeBatchHeader(`bench-stream-${stream}`, [{ key: 'host', value: 'bench' }]), {
    capacity: chunkBytes + 64 * 1024,
    lineBlocks: true,
  });
  const head = new RunHead(`/var/log/bench-${stream}.log`, `bench:${stream}`);
  // What one read of the file would hold: the writer keeps views of it until settle().
  const perRead = Math.max(1, Math.floor((1 << 20) / lineBytes));
  const text = Buffer.alloc(perRead * lineBytes);
  const time = LineTime.fromMillis(Date.now());
  const out: Buffer[] = [];
  const seal = (): void => {
    const count = writer.entryCount;
    out.push(encodeChunkMessage(out.length + 1, writer.finish(), count));
  };
  for (let i = 0, k = 0; i < lines; i++, k++) {
    if (k === perRead) {
      writer.settle();
      k = 0;
    }
    const at = k * lineBytes;
    fillLine(text, at, firstSeq + i, lineBytes);
    if (writer.entryCount > 0 && writer.byteLengthWith(head, lineBytes - 1, i * lineBytes) > chunkBytes) seal();
    writer.append(head, text, at, at + lineBytes - 1, i * lineBytes, time);
  }
  if (writer.entryCount > 0) seal();
  return out;
}

type RawCall = grpc.ClientDuplexStream<Buffer, AckMessage>;

interface StreamRun {
  readonly client: grpc.Client;
  readonly call: RawCall;
  /** Resolves when the stream's limits (response headers) arrived. */
  readonly open: Promise<void>;
}

function openStream(address: string, stream: number): StreamRun {
  const deserialize = loadIngestApi().service.Ship?.responseDeserialize as (b: Buffer) => AckMessage;
  // A distinct channel option keeps grpc-js from sharing one connection between the streams.
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { 'mc.bench.stream': stream });
  const call = client.makeBidiStreamRequest(SHIP_METHOD, (b: Buffer) => b, deserialize);
  const open = new Promise<void>((resolve, reject) => {
    call.once('metadata', () => resolve());
    call.once('error', reject);
  });
  return { client, call, open };
}

/** Sends `chunks` with at most STREAM_WINDOW_BYTES unacknowledged; resolves when all are acked OK. */
function ship(run: StreamRun, chunks: readonly Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const { call } = run;
    let next = 0;
    let acked = 0;
    let inflightBytes = 0;
    let waitingDrain = false;
    const pump = (): void => {
      while (next < chunks.length && !waitingDrain && (inflightBytes === 0 || inflightBytes + (chunks[next] as Buffer).length <= STREAM_WINDOW_BYTES)) {
        const chunk = chunks[next++] as Buffer;
        inflightBytes += chunk.length;
        if (!call.write(chunk)) {
          waitingDrain = true;
          call.once('drain', () => {
            waitingDrain = false;
            pump();
          });
        }
      }
    };
    call.on('data', (ack: AckMessage) => {
      if (ack.code !== AckCode.OK) {
        reject(new Error(`chunk ${ack.sequence} answered ${ack.code}: ${ack.message}`));
        return;
      }
      if (ack.sequence !== acked + 1) {
        reject(new Error(`ack for chunk ${ack.sequence}, expected ${acked + 1}`));
        return;
      }
      inflightBytes -= (chunks[acked] as Buffer).length;
      acked++;
      if (acked === chunks.length) resolve();
      else pump();
    });
    call.on('error', (err) => reject(err));
    pump();
  });
}

export async function runIngestBench(streams = 10, lines = 1_000_000, lineBytes = 120, chunkBytes = 1024 * 1024): Promise<IngestResult> {
  const dir = mkdtempSync(join(tmpdir(), 'mc-ingest-'));
  const output = join(dir, 'shipped.log');
  try {
    const perStream = Math.floor(lines / streams);
    const encoded: Buffer[][] = [];
    for (let s = 0; s < streams; s++) {
      const n = s === streams - 1 ? lines - perStream * (streams - 1) : perStream;
      encoded.push(encodeStream(s, s * perStream, n, lineBytes, chunkBytes));
    }
    const aggregator = await startBenchAggregator(dir, { AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: output }) });
    const pid = aggregator.child.pid;
    const runs: StreamRun[] = [];
    try {
      const address = `127.0.0.1:${Number(aggregator.ready.grpcPort)}`;
      for (let s = 0; s < streams; s++) runs.push(openStream(address, s));
      await Promise.all(runs.map((r) => r.open));
      const breakdown = process.env.BENCH_MEMORY_BREAKDOWN === '1' ? sampleBreakdown(Number(aggregator.ready.metricsPort)) : undefined;
      const cpuBefore = cpuSeconds(pid);
      const generatorBefore = process.cpuUsage();
      const started = process.hrtime.bigint();
      await Promise.all(runs.map((r, s) => ship(r, encoded[s] as Buffer[])));
      const ackSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      await waitForSize(output, lines * lineBytes, 600_000);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const aggregatorCpuSeconds = cpuSeconds(pid) - cpuBefore;
      const generator = process.cpuUsage(generatorBefore);
      const aggregatorPeakRssMiB = peakRssMiB(pid);
      const memory = await breakdown?.stop();
      for (const r of runs) r.call.end();
      await aggregator.stop();
      const count = verifyOutput(output, lines, lineBytes);
      if (!isExact(count)) throw new Error(`ingest with ${streams} streams: the output is not the corpus: ${JSON.stringify(count)}`);
      return {
        streams,
        lines,
        lineBytes,
        ackSeconds,
        seconds,
        linesPerSecond: lines / seconds,
        aggregatorCpuSeconds,
        aggregatorCpuPerMillion: (aggregatorCpuSeconds * 1_000_000) / lines,
        aggregatorPeakRssMiB,
        generatorCpuSeconds: (generator.user + generator.system) / 1e6,
        count,
        memory,
      };
    } finally {
      for (const r of runs) {
        r.call.cancel();
        r.client.close();
      }
      await aggregator.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Samples the aggregator's memory and the peak of mega_aggregator_inflight_bytes every 250 ms. */
function sampleBreakdown(metricsPort: number): { stop(): Promise<{ peaks: MemoryPeaks; inflightPeakMiB: number }> } {
  const memory = sampleMemory(metricsPort);
  let inflightPeak = 0;
  let pending: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    pending = pending
      .then(async () => {
        inflightPeak = Math.max(inflightPeak, await scrapeMetric(metricsPort, 'mega_aggregator_inflight_bytes'));
      })
      .catch(() => undefined);
  }, 250);
  return {
    async stop() {
      clearInterval(timer);
      await pending;
      return { peaks: await memory.stop(), inflightPeakMiB: inflightPeak / 2 ** 20 };
    },
  };
}

export function formatIngest(r: IngestResult): string {
  const memory = r.memory === undefined ? '' : `\n  ${formatPeaks('aggregator', r.memory.peaks)}; in flight at most ${r.memory.inflightPeakMiB.toFixed(0)} MiB (sampled)`;
  return (
    `ingest ${r.streams} stream(s) → aggregator(spool,fsync)→file: ${r.lines} lines of ${r.lineBytes} B; all acked in ${r.ackSeconds.toFixed(2)} s, ` +
    `all emitted in ${r.seconds.toFixed(2)} s = ${Math.round(r.linesPerSecond).toLocaleString('en-US')} lines/s; aggregator CPU ` +
    `${r.aggregatorCpuSeconds.toFixed(2)} s (${r.aggregatorCpuPerMillion.toFixed(2)} s per 1M lines), peak RSS ${r.aggregatorPeakRssMiB.toFixed(0)} MiB; ` +
    `load generator CPU ${r.generatorCpuSeconds.toFixed(2)} s; exact (${r.count.delivered} delivered, 0 lost, 0 duplicated)${memory}`
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [streams, lines, lineBytes, chunkBytes] = positionalArgs('usage: node dist/bench/ingest-bench.js [streams=10] [lines=1000000] [lineBytes=120] [chunkBytes=1048576]', [
    { name: 'streams', fallback: 10 },
    { name: 'lines', fallback: 1_000_000 },
    { name: 'lineBytes', fallback: 120, min: 23 },
    { name: 'chunkBytes', fallback: 1024 * 1024, min: 1024 },
  ]);
  runIngestBench(streams as number, lines as number, lineBytes as number, chunkBytes as number)
    .then((r) => console.log(formatIngest(r)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}

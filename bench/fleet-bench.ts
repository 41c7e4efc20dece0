/**
 * Sizing measurements for docs/scaling.md: one real aggregator process (blackhole emitter, durable
 * spool) under a simulated fleet. Each simulated collector is its own gRPC channel (its own TCP
 * connection and HTTP/2 session, as a real collector has) with one Ship stream, sending what a real
 * collector at `rate` lines/s sends: a chunk every `intervalMs` (the collector's poll interval seals a
 * chunk each pass when files are read to their end). Reports, per fleet size: lines/s acknowledged,
 * the aggregator's CPU (s per million lines and cores), RSS (and per stream), bytes written to disk per
 * line (/proc/<pid>/io), and ack latency percentiles. A "max" run sends large chunks on a few streams
 * with a window of chunks in flight, for the aggregator's ceiling.
 *
 *   node dist/bench/fleet-bench.js [streams=1,100,500,1000] [rate=100] [seconds=10] [intervalMs=250] [max=yes]
 *
 * The simulator is one Node process: with thousands of streams it competes for the same cores as the
 * aggregator, so the fleet figures are a lower bound for the aggregator.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { EntryBatchWriter, RunHead, encodeBatchHeader } from '../src/wire/entry-batch.js';
import { loadIngestApi } from '../src/wire/grpc-api.js';
import type { AckMessage, ChunkMessage } from '../src/wire/grpc-api.js';
import { startBenchAggregator } from './e2e-bench.js';
import { cpuSeconds } from './proc-stats.js';

type Call = grpc.ClientDuplexStream<ChunkMessage, AckMessage>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function chunkOf(lines: number, lineBytes = 120): Buffer {
  const writer = new EntryBatchWriter(encodeBatchHeader('sim-collector', [{ key: 'host', value: 'sim' }]));
  const head = new RunHead('/var/log/app/app.log', 'sim-file');
  const line = Buffer.alloc(lineBytes, 'x');
  for (let i = 0; i < lines; i++) writer.addLine(head, line, 0, line.length, i * (lineBytes + 1), 1_700_000_000_000_000_000n);
  return writer.finish();
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

function writeBytes(pid: number): number {
  const m = /^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

interface Result {
  readonly streams: number;
  readonly linesPerSecond: number;
  readonly cpuPerMillionLines: number;
  readonly cores: number;
  readonly rssMiB: number;
  readonly rssIdleMiB: number;
  readonly diskBytesPerLine: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly simulatorCores: number;
}

/**
 * `streams` channels; each sends `linesPerChunk` lines every `intervalMs` (or, with `window`, keeps
 * that many chunks in flight as fast as acks come back).
 */
async function run(streams: number, linesPerChunk: number, intervalMs: number, seconds: number, window?: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'mc-fleet-bench-'));
  const aggregator = await startBenchAggregator(dir, {});
  const pid = aggregator.child.pid as number;
  const address = `127.0.0.1:${String(aggregator.ready.grpcPort)}`;
  await sleep(500);
  const rssIdle = rssMiB(pid);
  const { Client } = loadIngestApi();
  const payload = chunkOf(linesPerChunk);
  const clients: grpc.Client[] = [];
  const latencies: number[] = [];
  let measuring = false;
  let ackedLines = 0;
  let running = true;
  const timers: NodeJS.Timeout[] = [];
  for (let s = 0; s < streams; s++) {
    // Its own subchannel: one TCP connection per simulated collector, as in a real fleet.
    const client = new Client(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as grpc.Client & { Ship(): Call };
    clients.push(client);
    const call = client.Ship();
    const sent = new Map<number, number>();
    let sequence = 0;
    const send = (): void => {
      if (!running) return;
      sent.set(++sequence, performance.now());
      call.write({ sequence, entries: payload, entryCount: linesPerChunk });
    };
    call.on('data', (ack: AckMessage) => {
      const t = sent.get(ack.sequence);
      sent.delete(ack.sequence);
      if (measuring && t !== undefined && ack.code === 'OK') {
        latencies.push(performance.now() - t);
        ackedLines += linesPerChunk;
      }
      if (window !== undefined) send();
    });
    call.on('error', () => undefined);
    if (window !== undefined) for (let i = 0; i < window; i++) send();
    else {
      // Staggered over the interval, as independent collectors are.
      const start = setTimeout(() => {
        send();
        timers.push(setInterval(send, intervalMs));
      }, Math.random() * intervalMs);
      timers.push(start);
    }
    if (s % 200 === 199) await sleep(50);
  }
  await sleep(2000);
  measuring = true;
  const cpu0 = cpuSeconds(pid);
  const io0 = writeBytes(pid);
  const sim0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const io = writeBytes(pid) - io0;
  const sim = process.cpuUsage(sim0);
  const rss = rssMiB(pid);
  running = false;
  for (const t of timers) clearInterval(t);
  for (const c of clients) c.close();
  await aggregator.stop(10_000);
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    streams,
    linesPerSecond: ackedLines / elapsed,
    cpuPerMillionLines: ackedLines === 0 ? Number.NaN : cpu / (ackedLines / 1e6),
    cores: cpu / elapsed,
    rssMiB: rss,
    rssIdleMiB: rssIdle,
    diskBytesPerLine: ackedLines === 0 ? Number.NaN : io / ackedLines,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? Number.NaN,
    simulatorCores: (sim.user + sim.system) / 1e6 / elapsed,
  };
}

function show(label: string, r: Result): void {
  const f = (n: number, d = 0): string => n.toFixed(d);
  console.log(
    `${label}: streams ${r.streams}, ${f(r.linesPerSecond)} lines/s, aggregator CPU ${f(r.cpuPerMillionLines, 2)} s per 1M lines (${f(r.cores, 2)} cores), ` +
      `RSS ${f(r.rssMiB)} MiB (idle ${f(r.rssIdleMiB)}; ${f(((r.rssMiB - r.rssIdleMiB) * 1024) / Math.max(1, r.streams), 1)} KiB per stream), ` +
      `disk ${f(r.diskBytesPerLine)} B written per line, ack latency p50 ${f(r.p50, 1)} ms p99 ${f(r.p99, 1)} ms max ${f(r.max)} ms, simulator ${f(r.simulatorCores, 2)} cores`,
  );
}

async function main(): Promise<void> {
  const fleets = (process.argv[2] ?? '1,100,500,1000').split(',').map(Number);
  const rate = Number(process.argv[3] ?? 100);
  const seconds = Number(process.argv[4] ?? 10);
  const intervalMs = Number(process.argv[5] ?? 250);
  const linesPerChunk = Math.max(1, Math.round((rate * intervalMs) / 1000));
  if (process.argv[6] !== 'no') show('max', await run(4, 1000, 0, seconds, 8));
  for (const n of fleets) show(`fleet at ${rate} lines/s each, a chunk every ${intervalMs} ms`, await run(n, linesPerChunk, intervalMs, seconds));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

/**
 * Against the real Aeron C media driver (`aeronmd` and its samples from ../shared/aeron-driver or
 * AERON_DRIVER_DIR; tools beside the project, never part of it), run by aeron-bench.ts when present:
 * 1. our publication into aeronmd against the C `streaming_publisher` into the same aeronmd, 120-byte
 *    messages, runs interleaved, medians: both are read by one C `rate_subscriber`;
 * 2. the Aeron emitter into aeronmd with `"confirm": "receiver"` (a batch counts once the driver's
 *    status messages say its subscriber consumed it) and `"confirm": "sent"` (once it left the
 *    socket: Telegraf's behaviour and this emitter's before receiver confirmation), interleaved, medians;
 * 3. the same two modes end to end (collector → aggregator → aeronmd), interleaved, medians, and the
 *    ratio: what receiver confirmation costs the pipeline.
 *   node dist/bench/aeron-driver-bench.js [count=1000000] [all|publication|confirm|e2e]
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { OfferResult } from '../src/aeron/publication.js';
import { UdpPublication } from '../src/aeron/udp-publication.js';
import { parseAeronConfiguration } from '../src/config/aeron-config.js';
import type { AeronConfirmMode } from '../src/config/aeron-config.js';
import { arrayBatch } from '../src/emitters/array-batch.js';
import { createAeronEmitter } from '../src/emitters/aeron-emitter.js';
import type { Batch, Confirmation } from '../src/emitters/emitter.js';
import { EntryBatchWriter, RunHead, decodeEntries, encodeBatchHeader } from '../src/wire/entry-batch.js';
import { metricValue } from '../support/metrics-text.js';
import { writeCorpus } from './corpus.js';
import { startBenchAggregator, startBenchCollector } from './e2e-bench.js';
import { cpuSeconds } from './proc-stats.js';
import { positionalArgs } from './positional-args.js';

/** dist/bench → the repository root is two levels up. */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DRIVER_DIR = process.env.AERON_DRIVER_DIR ?? resolve(REPO_ROOT, '..', 'shared', 'aeron-driver');
const TOOLS = ['aeronmd', 'rate_subscriber', 'streaming_publisher'];

/** Why the driver benchmarks cannot run here, or undefined when they can. */
export function driverMissing(): string | undefined {
  const missing = TOOLS.filter((t) => !existsSync(join(DRIVER_DIR, t)));
  return missing.length === 0 ? undefined : `the Aeron C media driver's ${missing.join(', ')} not in ${DRIVER_DIR} (set AERON_DRIVER_DIR)`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Driver {
  readonly dir: string;
  readonly children: ChildProcess[];
}

async function startDriverAndSubscriber(channel: string, streamId: number): Promise<Driver> {
  const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'mc-bench-aeron-'));
  const driver = spawn(join(DRIVER_DIR, 'aeronmd'), [], { env: { ...process.env, AERON_DIR: dir, AERON_THREADING_MODE: 'SHARED' }, stdio: 'ignore' });
  for (let i = 0; !existsSync(join(dir, 'cnc.dat')); i++) {
    if (i > 500) throw new Error('aeronmd did not start');
    await sleep(20);
  }
  const subscriber = spawn(join(DRIVER_DIR, 'rate_subscriber'), ['-p', dir, '-c', channel, '-s', String(streamId)], { stdio: 'ignore' });
  await sleep(500);
  return { dir, children: [driver, subscriber] };
}

async function stop(d: Driver): Promise<void> {
  for (const c of [...d.children].reverse()) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([exited, sleep(3000).then(() => c.kill('SIGKILL'))]);
  }
  rmSync(d.dir, { recursive: true, force: true });
}

/**
 * Our publication, timed as the C streaming_publisher times itself: from the first offer until the
 * last offer succeeded (its messages in the log, the last window of them not yet sent), so that
 * the two figures are like for like. `sent` goes on until the last byte left the socket.
 */
async function ourPublication(channel: string, streamId: number, count: number, length: number): Promise<{ offered: number; sent: number; cpuPerMillion: number; retransmits: number }> {
  const pub = await UdpPublication.open({ channel, streamId });
  try {
    if (!(await pub.waitForConnected(5000))) throw new Error('aeronmd did not answer our SETUP');
    const msg = Buffer.alloc(length);
    // This process does nothing else meanwhile: its CPU is the publication's (offers, sends, SMs).
    const cpuAtStart = process.cpuUsage();
    const start = performance.now();
    let end = 0;
    for (let i = 0; i < count; i++) {
      // The message's first 8 bytes are its number (the C sample stores a uint64 there).
      msg.writeUInt32LE(i >>> 0, 0);
      msg.writeUInt32LE(Math.floor(i / 0x1_0000_0000), 4);
      for (;;) {
        const r = pub.offer(msg);
        if (r > 0) {
          end = r;
          break;
        }
        if (r !== OfferResult.BackPressured) throw new Error(`offer: ${r}`);
        await pub.waitForProgress(1000);
      }
    }
    const offered = performance.now();
    while (pub.publication.senderPosition < end) await pub.waitForProgress(1000);
    const sent = performance.now();
    const cpu = process.cpuUsage(cpuAtStart);
    return { offered: count / ((offered - start) / 1000), sent: count / ((sent - start) / 1000), cpuPerMillion: ((cpu.user + cpu.system) / 1e6) * (1e6 / count), retransmits: pub.publication.counters.retransmits };
  } finally {
    pub.abort();
  }
}

/** The C streaming_publisher's own figure ("Total: …ms, R msgs/sec"). */
function cPublisher(dir: string, channel: string, streamId: number, count: number, length: number): Promise<number> {
  return new Promise((resolveRate, reject) => {
    const child = spawn(join(DRIVER_DIR, 'streaming_publisher'), ['-p', dir, '-c', channel, '-s', String(streamId), '-m', String(count), '-L', String(length)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => {
      const m = /Total: \d+ms, ([\d.e+]+) msgs\/sec/.exec(out);
      if (code !== 0 || m === null) reject(new Error(`streaming_publisher exited ${code}: ${out.slice(-300)}`));
      else resolveRate(Number(m[1]));
    });
  });
}

export interface PublicationComparison {
  /** Messages/s until the last offer succeeded, as the C publisher reports itself. */
  readonly ours: readonly number[];
  /** Messages/s until the last byte was sent. */
  readonly oursSent: readonly number[];
  /** CPU seconds (user + system) of our publication per million messages, per run. */
  readonly oursCpu: readonly number[];
  /** Datagrams our publication sent again on the receiver's NAKs, per run. */
  readonly oursRetransmits: readonly number[];
  readonly c: readonly number[];
  /** median(ours) / median(c). */
  readonly ratio: number;
  /** median(oursSent) / median(c): ours held to the stricter end. */
  readonly ratioSent: number;
}

export async function comparePublications(count = 1_000_000, runs = 3): Promise<PublicationComparison> {
  const streamId = 1001;
  const channel = `aeron:udp?endpoint=127.0.0.1:${await freePort()}`;
  const d = await startDriverAndSubscriber(channel, streamId);
  const ours: number[] = [];
  const oursSent: number[] = [];
  const oursCpu: number[] = [];
  const oursRetransmits: number[] = [];
  const c: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const r = await ourPublication(channel, streamId, count, 120);
      ours.push(r.offered);
      oursSent.push(r.sent);
      oursCpu.push(r.cpuPerMillion);
      oursRetransmits.push(r.retransmits);
      c.push(await cPublisher(d.dir, channel, streamId, count, 120));
    }
  } finally {
    await stop(d);
  }
  return { ours, oursSent, oursCpu, oursRetransmits, c, ratio: median(ours) / median(c), ratioSent: median(oursSent) / median(c) };
}

function batchesOf(entries: number, batchSize: number): Batch[] {
  const head = new RunHead('/var/log/bench.log', 'bench');
  const writer = new EntryBatchWriter(encodeBatchHeader('bench', []));
  const line = Buffer.alloc(120, 0x62);
  const batches: Batch[] = [];
  for (let n = 0; n < entries; n += batchSize) {
    for (let i = 0; i < batchSize; i++) writer.addLine(head, line, 0, line.length, (n + i) * 121, 0n);
    batches.push(arrayBatch(batches.length + 1, decodeEntries(writer.finish())));
  }
  return batches;
}

/**
 * Entries/s through the emitter into aeronmd, until every batch is confirmed: by the receiver's status
 * messages (`receiver`, the default) or once sent (`sent`, Telegraf's behaviour, not at least once).
 */
async function emitterRun(channel: string, streamId: number, batches: readonly Batch[], confirm: AeronConfirmMode): Promise<number> {
  const emitter = createAeronEmitter(parseAeronConfiguration(JSON.stringify({ channel, stream_id: streamId, confirm })), { lingerMs: 1000 });
  await emitter.start();
  const signal = new AbortController().signal;
  const confirmations: Confirmation[] = [];
  let entries = 0;
  const start = performance.now();
  for (const b of batches) {
    const r = await emitter.emit(b, signal);
    if (r.kind !== 'ok') throw new Error(`emit: ${r.kind}`);
    entries += b.count;
    if (r.confirmed !== undefined) confirmations.push(r.confirmed);
  }
  if (!(await Promise.all(confirmations)).every(Boolean)) throw new Error('a batch was not confirmed');
  const seconds = (performance.now() - start) / 1000;
  emitter.udpPublication?.abort();
  return entries / seconds;
}

export interface ConfirmationCost {
  readonly on: readonly number[];
  readonly off: readonly number[];
  /** 1 - median(on) / median(off). */
  readonly cost: number;
}

export async function confirmationCost(entries = 1_000_000, batchSize = 1000, runs = 3): Promise<ConfirmationCost> {
  const streamId = 1002;
  const channel = `aeron:udp?endpoint=127.0.0.1:${await freePort()}`;
  const d = await startDriverAndSubscriber(channel, streamId);
  const batches = batchesOf(entries, batchSize);
  const on: number[] = [];
  const off: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      off.push(await emitterRun(channel, streamId, batches, 'sent'));
      on.push(await emitterRun(channel, streamId, batches, 'receiver'));
    }
  } finally {
    await stop(d);
  }
  return { on, off, cost: 1 - median(on) / median(off) };
}

/**
 * One end-to-end run: corpus file → collector → gRPC → aggregator (spool, fsync'd acks) → Aeron
 * emitter → aeronmd → rate_subscriber, the real programs. Lines/s from the collector's start until
 * every line is emitted and the spool holds nothing undelivered (with `receiver`, delivered means
 * the subscriber consumed it; with `sent`, that it left the socket). Checked: emitted = lines,
 * nothing dead-lettered.
 */
async function pipelineRun(dir: string, input: string, lines: number, channel: string, streamId: number, confirm: AeronConfirmMode, run: number): Promise<PipelineRun> {
  const work = join(dir, `${confirm}-${run}`);
  const aggregator = await startBenchAggregator(work, { AGGREGATOR_AERON_CONFIGURATION: JSON.stringify({ channel, stream_id: streamId, confirm }) });
  const metricsPort = Number(aggregator.ready.metricsPort);
  try {
    const aggregatorReadyCpu = cpuSeconds(aggregator.child.pid);
    const started = performance.now();
    const collector = await startBenchCollector(work, input, Number(aggregator.ready.grpcPort));
    try {
      const deadline = Date.now() + 600_000;
      let allEmitted: number | undefined;
      for (;;) {
        const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
        const text = await res.text();
        if (allEmitted === undefined && metricValue(text, 'mega_aggregator_entries_emitted_total') >= lines) allEmitted = performance.now();
        if (metricValue(text, 'mega_aggregator_entries_emitted_total') >= lines && metricValue(text, 'mega_aggregator_spool_pending_entries') === 0) {
          if (metricValue(text, 'mega_aggregator_entries_dead_lettered_total') !== 0) throw new Error('entries were dead-lettered');
          if (metricValue(text, 'mega_aggregator_entries_emitted_total') !== lines) throw new Error(`emitted ${metricValue(text, 'mega_aggregator_entries_emitted_total')} of ${lines}`);
          break;
        }
        if (Date.now() > deadline) throw new Error(`not all of ${lines} lines delivered in time (${confirm})`);
        await sleep(100);
      }
      const now = performance.now();
      const seconds = (now - started) / 1000;
      return { rate: lines / seconds, aggregatorCpuPerMillion: ((cpuSeconds(aggregator.child.pid) - aggregatorReadyCpu) * 1e6) / lines, tailMs: now - (allEmitted ?? now) };
    } finally {
      await collector.stop();
    }
  } finally {
    await aggregator.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

interface PipelineRun {
  /** Lines/s from the collector's start until every line is delivered. */
  readonly rate: number;
  /** The aggregator's CPU seconds (user + system, after its ready line) per million lines. */
  readonly aggregatorCpuPerMillion: number;
  /** From the first scrape showing every line emitted (offered) to the one showing nothing pending (confirmed), 100 ms polls. */
  readonly tailMs: number;
}

export interface PipelineConfirmationCost {
  readonly receiver: readonly number[];
  readonly sent: readonly number[];
  /** The aggregator's CPU seconds per million lines, per run. */
  readonly receiverCpu: readonly number[];
  readonly sentCpu: readonly number[];
  /** Milliseconds from every line emitted to every line confirmed, per run. */
  readonly receiverTailMs: readonly number[];
  readonly sentTailMs: readonly number[];
  /** median(receiver) / median(sent). */
  readonly ratio: number;
}

/** The pipeline with `"confirm": "receiver"` against `"confirm": "sent"`, interleaved, medians. */
export async function pipelineConfirmationCost(lines = 1_000_000, runs = 3): Promise<PipelineConfirmationCost> {
  const streamId = 1003;
  const channel = `aeron:udp?endpoint=127.0.0.1:${await freePort()}`;
  const dir = mkdtempSync(join(tmpdir(), 'mc-bench-aeron-e2e-'));
  const d = await startDriverAndSubscriber(channel, streamId);
  const receiver: PipelineRun[] = [];
  const sent: PipelineRun[] = [];
  try {
    const input = join(dir, 'input.log');
    writeCorpus(input, lines, 120);
    for (let run = 0; run < runs; run++) {
      sent.push(await pipelineRun(dir, input, lines, channel, streamId, 'sent', run));
      receiver.push(await pipelineRun(dir, input, lines, channel, streamId, 'receiver', run));
    }
  } finally {
    await stop(d);
    rmSync(dir, { recursive: true, force: true });
  }
  const rates = (rs: PipelineRun[]): number[] => rs.map((r) => r.rate);
  const cpu = (rs: PipelineRun[]): number[] => rs.map((r) => r.aggregatorCpuPerMillion);
  const tail = (rs: PipelineRun[]): number[] => rs.map((r) => r.tailMs);
  return { receiver: rates(receiver), sent: rates(sent), receiverCpu: cpu(receiver), sentCpu: cpu(sent), receiverTailMs: tail(receiver), sentTailMs: tail(sent), ratio: median(rates(receiver)) / median(rates(sent)) };
}

const rate = (r: number): string => Math.round(r).toLocaleString('en-US');

export type DriverBenchCase = 'all' | 'publication' | 'confirm' | 'e2e';

export async function printDriverBenches(count = 1_000_000, which: DriverBenchCase = 'all'): Promise<void> {
  const missing = driverMissing();
  if (missing !== undefined) {
    console.log(`aeron against aeronmd: skipped: ${missing}`);
    return;
  }
  if (which === 'all' || which === 'publication') await printPublicationComparison(count);
  if (which === 'all' || which === 'confirm') await printConfirmationCost(count);
  if (which === 'all' || which === 'e2e') await printPipelineConfirmationCost(count);
}

async function printPipelineConfirmationCost(lines: number): Promise<void> {
  const c = await pipelineConfirmationCost(lines);
  console.log(`end to end: file → collector → gRPC → aggregator (spool, fsync) → aeron → aeronmd + rate_subscriber, ${lines.toLocaleString('en-US')} lines of 120 B, interleaved, 3 runs`);
  const cpu = (xs: readonly number[]): string => `aggregator CPU s per 1M lines ${xs.map((x) => x.toFixed(2)).join(' / ')}, median ${median(xs).toFixed(2)}`;
  const tail = (xs: readonly number[]): string => `emitted → confirmed ${xs.map((x) => Math.round(x)).join(' / ')} ms`;
  console.log(`  "confirm": "receiver" (at least once)   ${c.receiver.map(rate).join(' / ')} lines/s  median ${rate(median(c.receiver))}; ${cpu(c.receiverCpu)}; ${tail(c.receiverTailMs)}`);
  console.log(`  "confirm": "sent" (NOT at least once)    ${c.sent.map(rate).join(' / ')} lines/s  median ${rate(median(c.sent))}; ${cpu(c.sentCpu)}; ${tail(c.sentTailMs)}`);
  console.log(`  receiver / sent (medians): ${c.ratio.toFixed(2)} — confirmation costs ${((1 - c.ratio) * 100).toFixed(1)} % (target ≤ 10 %)`);
}

async function printPublicationComparison(count: number): Promise<void> {
  const p = await comparePublications(count);
  console.log(`aeronmd (AERON_THREADING_MODE=SHARED, defaults: term 16 MiB, mtu 1408, receiver window 128 KiB) + rate_subscriber,`);
  console.log(`120 B messages, ${count.toLocaleString('en-US')} per run, interleaved, 3 runs; streaming_publisher -L 120 -m ${count} (busy-spins on back pressure)`);
  console.log(`  our publication, to the last offer   ${p.ours.map(rate).join(' / ')} msgs/s  median ${rate(median(p.ours))}`);
  console.log(`  our publication, to the last send    ${p.oursSent.map(rate).join(' / ')} msgs/s  median ${rate(median(p.oursSent))}`);
  console.log(`  our publication's CPU s per 1M msgs  ${p.oursCpu.map((x) => x.toFixed(2)).join(' / ')}  median ${median(p.oursCpu).toFixed(2)}`);
  console.log(`  our retransmitted datagrams (NAKs)  ${p.oursRetransmits.join(' / ')}`);
  console.log(`  C streaming_publisher (last offer)   ${p.c.map(rate).join(' / ')} msgs/s  median ${rate(median(p.c))}`);
  console.log(`  ratio of medians, like for like (last offer): ${p.ratio.toFixed(2)}x (target ≥ 1.5x); ours to the last send: ${p.ratioSent.toFixed(2)}x`);
}

async function printConfirmationCost(count: number): Promise<void> {
  const c = await confirmationCost(count);
  console.log(`aeron emitter → aeronmd, batches of 1000 × 120 B, ${count.toLocaleString('en-US')} entries per run, interleaved, 3 runs`);
  console.log(`  "confirm": "receiver"   ${c.on.map(rate).join(' / ')} entries/s  median ${rate(median(c.on))}`);
  console.log(`  "confirm": "sent"       ${c.off.map(rate).join(' / ')} entries/s  median ${rate(median(c.off))}`);
  console.log(`  cost of confirmation: ${(c.cost * 100).toFixed(1)} % (target ≤ 10 %)`);
}

// `node dist/bench/aeron-driver-bench.js [count=1000000] [all|publication|confirm|e2e]`: the driver cases alone.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [count, which] = positionalArgs('usage: node dist/bench/aeron-driver-bench.js [count=1000000] [all|publication|confirm|e2e]', [
    { name: 'count', fallback: 1_000_000 },
    { name: 'case', fallback: 'all', choices: ['all', 'publication', 'confirm', 'e2e'] },
  ]) as [number, DriverBenchCase];
  await printDriverBenches(count, which);
}

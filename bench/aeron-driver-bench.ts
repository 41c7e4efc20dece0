/**
 * Against the real Aeron C media driver (`aeronmd` and its samples from ../shared/aeron-driver or
 * AERON_DRIVER_DIR; tools beside the project, never part of it), run by aeron-bench.ts when present:
 * 1. our publication into aeronmd against the C `streaming_publisher` into the same aeronmd, 120-byte
 *    messages, runs interleaved, medians: both are read by one C `rate_subscriber`;
 * 2. the Aeron emitter into aeronmd with confirmations awaited (as the batcher does: a batch counts
 *    once the driver's status messages say its subscriber consumed it) and not awaited (the batch
 *    counted once offered and sent), runs interleaved, medians.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OfferResult } from '../src/aeron/publication.js';
import { UdpPublication } from '../src/aeron/udp-publication.js';
import { parseAeronConfiguration } from '../src/config/aeron-config.js';
import { arrayBatch } from '../src/emitters/array-batch.js';
import { createAeronEmitter } from '../src/emitters/aeron-emitter.js';
import type { Batch, Confirmation } from '../src/emitters/emitter.js';
import { EntryBatchWriter, RunHead, decodeEntries, encodeBatchHeader } from '../src/wire/entry-batch.js';

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

/** Our publication: messages/s from the first offer until the last byte left the socket. */
async function ourPublication(channel: string, streamId: number, count: number, length: number): Promise<number> {
  const pub = await UdpPublication.open({ channel, streamId });
  try {
    if (!(await pub.waitForConnected(5000))) throw new Error('aeronmd did not answer our SETUP');
    const msg = Buffer.alloc(length);
    const start = performance.now();
    let end = 0;
    for (let i = 0; i < count; i++) {
      msg.writeBigUInt64LE(BigInt(i), 0);
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
    while (pub.publication.senderPosition < end) await pub.waitForProgress(1000);
    return count / ((performance.now() - start) / 1000);
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
  readonly ours: readonly number[];
  readonly c: readonly number[];
  readonly ratio: number;
}

export async function comparePublications(count = 1_000_000, runs = 3): Promise<PublicationComparison> {
  const streamId = 1001;
  const channel = `aeron:udp?endpoint=127.0.0.1:${await freePort()}`;
  const d = await startDriverAndSubscriber(channel, streamId);
  const ours: number[] = [];
  const c: number[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      ours.push(await ourPublication(channel, streamId, count, 120));
      c.push(await cPublisher(d.dir, channel, streamId, count, 120));
    }
  } finally {
    await stop(d);
  }
  return { ours, c, ratio: median(ours) / median(c) };
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

/** Entries/s through the emitter into aeronmd, until every batch is confirmed (or only sent). */
async function emitterRun(channel: string, streamId: number, batches: readonly Batch[], confirm: boolean): Promise<number> {
  const emitter = createAeronEmitter(parseAeronConfiguration(JSON.stringify({ channel, stream_id: streamId })), { lingerMs: 1000 });
  await emitter.start();
  const signal = new AbortController().signal;
  const confirmations: Confirmation[] = [];
  let entries = 0;
  const start = performance.now();
  for (const b of batches) {
    const r = await emitter.emit(b, signal);
    if (r.kind !== 'ok') throw new Error(`emit: ${r.kind}`);
    entries += b.count;
    if (confirm && r.confirmed !== undefined) confirmations.push(r.confirmed);
  }
  const pub = emitter.udpPublication as UdpPublication;
  if (confirm) {
    if (!(await Promise.all(confirmations)).every(Boolean)) throw new Error('a batch was not confirmed');
  } else {
    while (pub.publication.senderPosition < pub.publication.producerPosition) await pub.waitForProgress(1000);
  }
  const seconds = (performance.now() - start) / 1000;
  pub.abort();
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
      off.push(await emitterRun(channel, streamId, batches, false));
      on.push(await emitterRun(channel, streamId, batches, true));
    }
  } finally {
    await stop(d);
  }
  return { on, off, cost: 1 - median(on) / median(off) };
}

const rate = (r: number): string => Math.round(r).toLocaleString('en-US');

export async function printDriverBenches(count = 1_000_000): Promise<void> {
  const missing = driverMissing();
  if (missing !== undefined) {
    console.log(`aeron against aeronmd: skipped: ${missing}`);
    return;
  }
  const p = await comparePublications(count);
  console.log(`aeronmd + rate_subscriber, 120 B messages, ${count.toLocaleString('en-US')} per run, interleaved, 3 runs`);
  console.log(`  our publication     ${p.ours.map(rate).join(' / ')} msgs/s  median ${rate(median(p.ours))}`);
  console.log(`  C streaming_publisher ${p.c.map(rate).join(' / ')} msgs/s  median ${rate(median(p.c))}`);
  console.log(`  ratio (medians): ${p.ratio.toFixed(2)}x (target ≥ 1.5x)`);
  const c = await confirmationCost(count);
  console.log(`aeron emitter → aeronmd, batches of 1000 × 120 B, ${count.toLocaleString('en-US')} entries per run, interleaved, 3 runs`);
  console.log(`  confirmations awaited   ${c.on.map(rate).join(' / ')} entries/s  median ${rate(median(c.on))}`);
  console.log(`  confirmations ignored   ${c.off.map(rate).join(' / ')} entries/s  median ${rate(median(c.off))}`);
  console.log(`  cost of confirmation: ${(c.cost * 100).toFixed(1)} % (target ≤ 10 %)`);
}

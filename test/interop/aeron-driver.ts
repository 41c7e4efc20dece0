import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../helpers/aggregator-process.js';

/**
 * The real Aeron C media driver and its samples, for the interop suite (`npm run test:interop`). They
 * are tools beside the project (`../shared/aeron-driver`, or where AERON_DRIVER_DIR points), never
 * files of the repository; `npm test` does not need them.
 */
export const DRIVER_DIR = process.env.AERON_DRIVER_DIR ?? resolve(REPO_ROOT, '..', 'shared', 'aeron-driver');

export function requireDriver(): void {
  for (const tool of ['aeronmd', 'basic_subscriber', 'streaming_publisher']) {
    if (!existsSync(join(DRIVER_DIR, tool))) {
      throw new Error(`the Aeron C media driver's ${tool} is not in ${DRIVER_DIR}: set AERON_DRIVER_DIR to the folder holding aeronmd and its samples`);
    }
  }
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  return exited.finally(() => clearTimeout(timer));
}

export interface MediaDriver {
  readonly aeronDir: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** One `aeronmd` in shared threading mode with its own AERON_DIR under /dev/shm (removed on stop). */
export async function startMediaDriver(env: Record<string, string> = {}): Promise<MediaDriver> {
  requireDriver();
  const aeronDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : '/tmp', 'mc-aeron-'));
  const child = spawn(join(DRIVER_DIR, 'aeronmd'), [], {
    env: { ...process.env, AERON_DIR: aeronDir, AERON_THREADING_MODE: 'SHARED', AERON_DIR_DELETE_ON_START: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // The driver is ready once its CnC file exists.
  const deadline = Date.now() + 10_000;
  while (!existsSync(join(aeronDir, 'cnc.dat'))) {
    if (child.exitCode !== null) throw new Error(`aeronmd exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('aeronmd did not create its cnc.dat in 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    aeronDir,
    child,
    stop: async () => {
      await stopChild(child, 'SIGTERM');
      rmSync(aeronDir, { recursive: true, force: true });
    },
  };
}

export interface Subscriber {
  readonly child: ChildProcess;
  /** Payloads printed so far, in order. */
  readonly payloads: string[];
  /** Image events printed so far ("Available image …", "Unavailable image …"). */
  readonly images: string[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * The C `basic_subscriber` on `channel`; resolves once it subscribed. Its payloads are collected into
 * `payloads` (pass the same array to a restarted subscriber to take the union).
 */
export async function startSubscriber(driver: MediaDriver, channel: string, streamId: number, payloads: string[] = []): Promise<Subscriber> {
  const child = spawn('stdbuf', ['-oL', join(DRIVER_DIR, 'basic_subscriber'), '-p', driver.aeronDir, '-c', channel, '-s', String(streamId)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const images: string[] = [];
  let subscribed: () => void = () => undefined;
  const ready = new Promise<void>((r) => (subscribed = r));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const m = /^Message to stream \d+ from session -?\d+ \(\d+ bytes\) <<(.*)>>$/.exec(line);
    if (m !== null) payloads.push(m[1] as string);
    else if (/image/i.test(line)) images.push(line);
    else if (line.startsWith('Subscription channel status')) subscribed();
  });
  child.stderr!.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await Promise.race([
    ready,
    new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`basic_subscriber exited with ${code} before subscribing`)))),
  ]);
  clearTimeout(timer);
  return { child, payloads, images, stop: (signal = 'SIGTERM') => stopChild(child, signal) };
}

/** Runs the C `streaming_publisher` to completion; resolves with its output. */
export function runStreamingPublisher(driver: MediaDriver, channel: string, streamId: number, messages: number, length: number): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(join(DRIVER_DIR, 'streaming_publisher'), ['-p', driver.aeronDir, '-c', channel, '-s', String(streamId), '-m', String(messages), '-L', String(length)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolveRun(out) : reject(new Error(`streaming_publisher exited with ${code}: ${out}`))));
  });
}

/**
 * Makes a subscriber slow: SIGSTOP for `stoppedMs`, SIGCONT for `runningMs`, again and again, until the
 * returned function is called (which leaves it running).
 */
export function throttle(child: ChildProcess, runningMs: number, stoppedMs: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const flip = (): void => {
    stopped = !stopped;
    child.kill(stopped ? 'SIGSTOP' : 'SIGCONT');
    timer = setTimeout(flip, stopped ? stoppedMs : runningMs);
  };
  timer = setTimeout(flip, runningMs);
  return () => {
    clearTimeout(timer);
    if (stopped) child.kill('SIGCONT');
  };
}

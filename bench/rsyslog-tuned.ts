/**
 * The peer: rsyslog (Debian's rsyslogd) moving the same corpus file → imfile → omfwd TCP → imtcp →
 * omfile, two daemons on loopback with their own configuration and work directories (never the system
 * daemon), in the tuned configuration of issue #12: one FixedArray main queue per instance (size 2000,
 * dequeue batches of 256); imfile in inotify mode reading from the start with no rate limits and 256 lines
 * per submit; omfwd TCP with RSYSLOG_ForwardFormat; imtcp without rate limiting; omfile writing only the
 * message with a 256 KiB buffer, flushed at every transaction end, synchronous writing.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer } from 'node:net';
import { cpuSeconds, peakRssMiB } from './proc-stats.js';
import { waitForSize } from './wait-for-size.js';

export interface PeerRun {
  readonly seconds: number;
  readonly senderCpuSeconds: number;
  readonly receiverCpuSeconds: number;
  readonly senderPeakRssMiB: number;
  readonly receiverPeakRssMiB: number;
  readonly output: string;
}

export const RSYSLOGD = process.env.RSYSLOGD ?? '/usr/sbin/rsyslogd';

export function rsyslogAvailable(): boolean {
  return existsSync(RSYSLOGD);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

function startDaemon(conf: string, pidFile: string): ChildProcess {
  // -n: stay in the foreground (our child, so we can read its /proc and stop it); -i: its own pid file.
  return spawn(RSYSLOGD, ['-n', '-f', conf, '-i', pidFile], { stdio: ['ignore', 'ignore', 'ignore'] });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Ships `input` (lines × lineBytes) through two tuned rsyslogd; timed from starting the sender. */
export async function runTunedRsyslog(dir: string, input: string, lines: number, lineBytes: number): Promise<PeerRun> {
  const sendDir = join(dir, 'rsyslog-send');
  const recvDir = join(dir, 'rsyslog-recv');
  mkdirSync(sendDir, { recursive: true });
  mkdirSync(recvDir, { recursive: true });
  const output = join(dir, 'rsyslog-out.log');
  const port = await freePort();
  const queue = 'main_queue(queue.type="FixedArray" queue.size="2000" queue.dequeueBatchSize="256")';
  writeFileSync(
    join(recvDir, 'rsyslog.conf'),
    [
      `global(workDirectory="${recvDir}" maxMessageSize="64k")`,
      queue,
      'module(load="imtcp")',
      // Only the message: %msg% starts with the space after the forwarded tag, hence from its 2nd byte.
      'template(name="msgonly" type="string" string="%msg:2:$%\\n")',
      `ruleset(name="out") { action(type="omfile" file="${output}" template="msgonly" ioBufferSize="256k" flushOnTXEnd="on" asyncWriting="off") }`,
      `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="out" ratelimit.interval="0")`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(sendDir, 'rsyslog.conf'),
    [
      `global(workDirectory="${sendDir}" maxMessageSize="64k")`,
      queue,
      'module(load="imfile" mode="inotify")',
      `ruleset(name="fwd") { action(type="omfwd" target="127.0.0.1" port="${port}" protocol="tcp" template="RSYSLOG_ForwardFormat") }`,
      `input(type="imfile" File="${input}" Tag="bench" ruleset="fwd" readMode="0" freshStartTail="off" reopenOnTruncate="off" MaxLinesPerMinute="0" MaxBytesPerMinute="0" MaxSubmitAtOnce="256")`,
      '',
    ].join('\n'),
  );
  const receiver = startDaemon(join(recvDir, 'rsyslog.conf'), join(recvDir, 'pid'));
  let sender: ChildProcess | undefined;
  try {
    await sleep(500);
    const started = process.hrtime.bigint();
    sender = startDaemon(join(sendDir, 'rsyslog.conf'), join(sendDir, 'pid'));
    const expected = lines * lineBytes;
    const running = sender;
    await waitForSize(output, expected, 600_000, () => (receiver.exitCode !== null || running.exitCode !== null ? 'rsyslog: a daemon exited early' : undefined));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return {
      seconds,
      senderCpuSeconds: cpuSeconds(sender.pid),
      receiverCpuSeconds: cpuSeconds(receiver.pid),
      senderPeakRssMiB: peakRssMiB(sender.pid),
      receiverPeakRssMiB: peakRssMiB(receiver.pid),
      output,
    };
  } finally {
    if (sender !== undefined) await stop(sender);
    await stop(receiver);
  }
}

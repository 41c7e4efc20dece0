#!/usr/bin/env node
/**
 * `npm start`: a live demo on embedded defaults. Starts a real aggregator (text emitter to stdout) and
 * a real collector tailing a sample log that this process keeps appending to and rotating
 * (rename + create), and prints a status line every two seconds. Ctrl-C stops everything cleanly.
 * DEMO_DURATION (seconds) stops it by itself; DEMO_DIR changes where it keeps its files.
 */
import { appendFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scrapeMetric } from '../../support/metrics-text.js';
import { startProgram } from '../../support/program.js';
import type { RunningProgram } from '../../support/program.js';

const here = dirname(fileURLToPath(import.meta.url));
const dir = resolve(process.env.DEMO_DIR ?? 'data/demo');
const logDir = join(dir, 'logs');
const logFile = join(logDir, 'app.log');
const durationS = Number(process.env.DEMO_DURATION ?? '0');

const LEVELS = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'];
const PATHS = ['/api/orders', '/api/users', '/healthz', '/api/cart', '/login'];

function say(text: string): void {
  process.stderr.write(`[demo] ${text}\n`);
}

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  // Programs log at info (the demo waits for their start-up lines); only warnings and errors are shown.
  const quiet = { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' };
  const relay = (line: string): void => {
    if (line.includes('"level":40') || line.includes('"level":50') || line.includes('"level":60')) process.stderr.write(`${line}\n`);
  };

  say(`files under ${dir}`);
  const aggregator = await startProgram({
    script: join(here, '../aggregator/main.js'),
    env: {
      ...quiet,
      AGGREGATOR_LISTEN_ADDRESS: '127.0.0.1:0',
      AGGREGATOR_METRICS_ADDRESS: '127.0.0.1:0',
      AGGREGATOR_TEXT_CONFIGURATION: '1',
      AGGREGATOR_MAX_BATCH_SIZE: '25',
      AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '2s',
      AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
    },
    readyMessage: 'listening',
    stdout: 'inherit',
    ownProcessGroup: true,
    onStderrLine: relay,
  });
  const grpcPort = Number(aggregator.ready.grpcPort);
  const aggMetrics = Number(aggregator.ready.metricsPort);
  say(`aggregator up: gRPC 127.0.0.1:${grpcPort}, metrics http://127.0.0.1:${aggMetrics}/metrics`);

  let written = 0;
  let rotations = 0;
  const writeLine = (): void => {
    written++;
    const level = LEVELS[written % LEVELS.length] as string;
    const path = PATHS[written % PATHS.length] as string;
    const ms = (written * 37) % 250;
    appendFileSync(logFile, `${new Date().toISOString()} ${level} request path=${path} status=200 duration_ms=${ms} n=${written}\n`);
  };
  writeLine();

  const collector = await startProgram({
    script: join(here, '../collector/main.js'),
    env: {
      ...quiet,
      COLLECTOR_REMOTE_ADDRESS: `127.0.0.1:${grpcPort}`,
      COLLECTOR_FILES: join(logDir, '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'collector'),
      COLLECTOR_METRICS_ADDRESS: '127.0.0.1:0',
      COLLECTOR_BUFFER_TIMEOUT: '200ms',
      COLLECTOR_TAGS: 'app=demo',
    },
    readyMessage: 'started',
    ownProcessGroup: true,
    onStderrLine: relay,
  });
  say(`collector up: tailing ${join(logDir, '*.log')}, metrics http://127.0.0.1:${String(collector.ready.metricsPort)}/metrics`);
  say('writing 25 lines/s to app.log and rotating it every 8 s; Ctrl-C to stop');

  const writer = setInterval(writeLine, 40);
  const rotator = setInterval(() => {
    renameSync(logFile, `${logFile}.1`);
    rotations++;
    writeLine();
  }, 8000);
  const status = setInterval(() => {
    void Promise.all([
      scrapeMetric(aggMetrics, 'mega_aggregator_entries_emitted_total'),
      scrapeMetric(aggMetrics, 'mega_aggregator_batches_emitted_total'),
    ])
      .then(([emitted, batches]) => {
        say(`written ${written}  emitted ${emitted} in ${batches} batches  lag ${written - emitted} lines  rotations ${rotations}`);
      })
      .catch(() => undefined);
  }, 2000);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(writer);
    clearInterval(rotator);
    clearInterval(status);
    // The collector stops reading at SIGTERM (what it has not read stays for its next start); give it
    // a moment to read the last lines written, so the demo ends with everything shipped.
    const collectorMetrics = Number(collector.ready.metricsPort);
    for (let i = 0; i < 40; i++) {
      const read = await scrapeMetric(collectorMetrics, 'mega_collector_lines_read_total').catch(() => written);
      if (read >= written) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    say('stopping: collector first (it sends what it read and waits for acks), then the aggregator (it emits what it holds)');
    const codes = await stopBoth(collector, aggregator);
    say(`done: written ${written} lines, exit codes collector=${codes[0]} aggregator=${codes[1]}`);
    process.exit(codes[0] === 0 && codes[1] === 0 ? 0 : 1);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  if (durationS > 0) setTimeout(() => void stop(), durationS * 1000);
}

async function stopBoth(collector: RunningProgram, aggregator: RunningProgram): Promise<[number | string, number | string]> {
  const c = await collector.stop();
  const a = await aggregator.stop();
  return [c, a];
}

main().catch((err: unknown) => {
  say(`failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

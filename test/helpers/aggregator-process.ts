import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { metricValue } from '../../support/metrics-text.js';
import { runProgram, startProgram } from '../../support/program.js';
import type { LogRecord, ProgramResult, RunningProgram } from '../../support/program.js';

/**
 * Runs the real aggregator program (`node dist/cmd/aggregator/main.js`, built by `npm run build`) as a
 * child process for integration tests (through the shared support/program.ts), waits for its
 * `msg:"listening"` log line and reads the bound ports from it (tests listen on port 0).
 */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const AGGREGATOR_MAIN = join(REPO_ROOT, 'dist', 'cmd', 'aggregator', 'main.js');

export interface AggregatorProcess {
  readonly child: RunningProgram['child'];
  readonly grpcPort: number;
  readonly metricsPort: number;
  /** "127.0.0.1:<grpcPort>" */
  readonly address: string;
  /** Every stderr line so far (JSON log records). */
  readonly logs: readonly string[];
  /** Everything written to stdout so far (text emitter output). */
  stdout(): Buffer;
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
  /** SIGTERM and wait for exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<number | string>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<number | string>;
  /** Resolves when a log record satisfying `match` appears (past or future). */
  waitForLog(match: (record: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  /** GET on the metrics port; returns status and body. */
  http(path: string): Promise<{ status: number; body: string }>;
  /** Sum of a metric's samples (all label sets, or those matching `labels`). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export interface StartAggregatorOptions {
  /** AGGREGATOR_* variables; AGGREGATOR_LISTEN_ADDRESS and AGGREGATOR_METRICS_ADDRESS default to 127.0.0.1:0. */
  readonly env: Record<string, string>;
  readonly args?: readonly string[];
  readonly timeoutMs?: number;
}

function assertBuilt(): void {
  if (!existsSync(AGGREGATOR_MAIN)) throw new Error(`${AGGREGATOR_MAIN} is missing: run "npm run build" first`);
}

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  // Start from a clean slate so a developer's own AGGREGATOR_* variables cannot leak into a test.
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('AGGREGATOR_') && k !== 'LOG_LEVEL') base[k] = v;
  }
  return {
    ...base,
    AGGREGATOR_LISTEN_ADDRESS: '127.0.0.1:0',
    AGGREGATOR_METRICS_ADDRESS: '127.0.0.1:0',
    LOG_LEVEL: 'info',
    ...env,
  };
}

export async function startAggregator(options: StartAggregatorOptions): Promise<AggregatorProcess> {
  assertBuilt();
  const program = await startProgram({
    script: AGGREGATOR_MAIN,
    args: options.args ?? [],
    env: childEnv(options.env),
    readyMessage: 'listening',
    timeoutMs: options.timeoutMs ?? 20_000,
    keepLogs: true,
    stdout: 'pipe',
  });
  const grpcPort = Number(program.ready.grpcPort);
  const metricsPort = Number(program.ready.metricsPort);
  const http = async (path: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}${path}`);
    return { status: res.status, body: await res.text() };
  };
  return {
    child: program.child,
    grpcPort,
    metricsPort,
    address: `127.0.0.1:${grpcPort}`,
    logs: program.logs,
    stdout: program.stdout,
    exited: program.exited,
    waitForLog: program.waitForLog,
    http,
    metric: async (name, labels) => metricValue((await http('/metrics')).body, name, labels),
    stop: (graceMs = 15_000) => program.stop(graceMs),
    kill: program.kill,
  };
}

/** Runs the aggregator to completion (bad configuration, sub-commands): exit code, stdout, stderr. */
export function runAggregator(env: Record<string, string>, args: readonly string[] = [], timeoutMs = 20_000): Promise<ProgramResult> {
  assertBuilt();
  return runProgram({ script: AGGREGATOR_MAIN, args, env: childEnv(env), timeoutMs });
}

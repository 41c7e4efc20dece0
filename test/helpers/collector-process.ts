import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { metricValue } from '../../support/metrics-text.js';
import { runProgram, startProgram } from '../../support/program.js';
import type { LogRecord, ProgramResult, RunningProgram } from '../../support/program.js';
import { REPO_ROOT } from './aggregator-process.js';

/**
 * Runs the real collector program (`node dist/cmd/collector/main.js`, built by `npm run build`) as a
 * child process (through the shared support/program.ts), waits for its `msg:"started"` line and reads
 * its metrics port from it.
 */
export const COLLECTOR_MAIN = join(REPO_ROOT, 'dist', 'cmd', 'collector', 'main.js');

/** Short timers so tests see rotations, rescans, retries and checkpoints quickly. */
export const FAST_COLLECTOR_ENV: Readonly<Record<string, string>> = {
  COLLECTOR_BUFFER_TIMEOUT: '50ms',
  COLLECTOR_RESCAN_INTERVAL: '200ms',
  COLLECTOR_POLL_INTERVAL: '50ms',
  COLLECTOR_ROTATE_WAIT: '1s',
  COLLECTOR_RETRY_INITIAL_DELAY: '50ms',
  COLLECTOR_RETRY_MAX_DELAY: '500ms',
};

export interface CollectorProcess {
  readonly child: RunningProgram['child'];
  readonly metricsPort: number;
  readonly logs: readonly string[];
  readonly exited: Promise<number | string>;
  stop(graceMs?: number): Promise<number | string>;
  kill(): Promise<number | string>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  metricsText(): Promise<string>;
  /** Resident set size in bytes, from /proc. */
  rss(): number;
  waitForLog(match: (r: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
}

function assertBuilt(): void {
  if (!existsSync(COLLECTOR_MAIN)) throw new Error(`${COLLECTOR_MAIN} is missing: run "npm run build" first`);
}

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COLLECTOR_') && k !== 'LOG_LEVEL') base[k] = v;
  return { ...base, COLLECTOR_METRICS_ADDRESS: '127.0.0.1:0', LOG_LEVEL: 'info', ...env };
}

export async function startCollector(env: Record<string, string>, args: readonly string[] = [], timeoutMs = 20_000): Promise<CollectorProcess> {
  assertBuilt();
  const program = await startProgram({ script: COLLECTOR_MAIN, args, env: childEnv(env), readyMessage: 'started', timeoutMs, keepLogs: true });
  const { child } = program;
  const metricsPort = Number(program.ready.metricsPort);
  const metricsText = async (): Promise<string> => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return {
    child,
    metricsPort,
    logs: program.logs,
    exited: program.exited,
    waitForLog: program.waitForLog,
    metricsText,
    metric: async (name, labels) => metricValue(await metricsText(), name, labels),
    rss: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return Number(m?.[1] ?? 0) * 1024;
    },
    stop: (graceMs = 15_000) => program.stop(graceMs),
    kill: program.kill,
  };
}

/** Runs the collector to completion (--help, bad configuration): exit code, stdout, stderr. */
export function runCollector(env: Record<string, string>, args: readonly string[] = []): Promise<ProgramResult> {
  assertBuilt();
  return runProgram({ script: COLLECTOR_MAIN, args, env: childEnv(env) });
}

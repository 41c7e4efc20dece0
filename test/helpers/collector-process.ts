import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProgram } from '../../src/util/program.js';
import { REPO_ROOT, parseMetric } from './aggregator-process.js';

/**
 * Runs the real collector program (`node dist/cmd/collector/main.js`, built by `npm run build`) as a
 * child process (through the shared startProgram), waits for its `msg:"started"` line and reads its
 * metrics port from it.
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
  readonly child: ChildProcess;
  readonly metricsPort: number;
  readonly logs: string[];
  readonly exited: Promise<number | string>;
  stop(graceMs?: number): Promise<number | string>;
  kill(): Promise<number | string>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  metricsText(): Promise<string>;
  /** Resident set size in bytes, from /proc. */
  rss(): number;
  waitForLog(match: (r: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COLLECTOR_') && k !== 'LOG_LEVEL') base[k] = v;
  return { ...base, COLLECTOR_METRICS_ADDRESS: '127.0.0.1:0', LOG_LEVEL: 'info', ...env };
}

export async function startCollector(env: Record<string, string>, args: readonly string[] = [], timeoutMs = 20_000): Promise<CollectorProcess> {
  if (!existsSync(COLLECTOR_MAIN)) throw new Error(`${COLLECTOR_MAIN} is missing: run "npm run build" first`);
  const logs: string[] = [];
  const records: Array<Record<string, unknown>> = [];
  const listeners = new Set<(r: Record<string, unknown>) => void>();
  const program = await startProgram({
    script: COLLECTOR_MAIN,
    args,
    env: childEnv(env),
    readyMessage: 'started',
    timeoutMs,
    onStderrLine: (line) => {
      logs.push(line);
      try {
        const r = JSON.parse(line) as Record<string, unknown>;
        records.push(r);
        for (const l of [...listeners]) l(r);
      } catch {
        // not JSON (e.g. a one-line configuration error)
      }
    },
  });
  const waitForLog = (match: (r: Record<string, unknown>) => boolean, ms = 20_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const found = records.find(match);
      if (found !== undefined) return resolve(found);
      const timer = setTimeout(() => {
        listeners.delete(l);
        reject(new Error(`collector: no matching log line within ${ms} ms; last lines:\n${logs.slice(-15).join('\n')}`));
      }, ms);
      const l = (r: Record<string, unknown>): void => {
        if (!match(r)) return;
        clearTimeout(timer);
        listeners.delete(l);
        resolve(r);
      };
      listeners.add(l);
    });
  const { child } = program;
  const metricsPort = Number(program.ready.metricsPort);
  const metricsText = async (): Promise<string> => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return {
    child,
    metricsPort,
    logs,
    exited: program.exited,
    waitForLog,
    metricsText,
    metric: async (name, labels) => parseMetric(await metricsText(), name, labels),
    rss: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return Number(m?.[1] ?? 0) * 1024;
    },
    stop: (graceMs = 15_000) => program.stop(graceMs),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return program.exited;
    },
  };
}

/** Runs the collector to completion (--help, bad configuration): exit code, stdout, stderr. */
export function runCollector(env: Record<string, string>, args: readonly string[] = []): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [COLLECTOR_MAIN, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code: code ?? signal ?? 'unknown', stdout, stderr });
    });
  });
}

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Runs the real aggregator program (`node dist/cmd/aggregator/main.js`, built by `npm run build`) as a
 * child process for integration tests, waits for its `msg:"listening"` log line and reads the bound
 * ports from it (tests listen on port 0).
 */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const AGGREGATOR_MAIN = join(REPO_ROOT, 'dist', 'cmd', 'aggregator', 'main.js');

export interface AggregatorProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly metricsPort: number;
  /** "127.0.0.1:<grpcPort>" */
  readonly address: string;
  /** Every stderr line so far (JSON log records). */
  readonly logs: string[];
  /** Everything written to stdout so far (text emitter output). */
  stdout(): Buffer;
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
  /** SIGTERM and wait for exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<number | string>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<number | string>;
  /** Resolves when a log record satisfying `match` appears (past or future). */
  waitForLog(match: (record: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
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

export function parseMetric(body: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of body.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    const labelText = m[2] ?? '';
    const ok = Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`));
    if (ok) total += Number(m[3]);
  }
  return total;
}

export function startAggregator(options: StartAggregatorOptions): Promise<AggregatorProcess> {
  assertBuilt();
  const child = spawn(process.execPath, [AGGREGATOR_MAIN, ...(options.args ?? [])], {
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const records: Array<Record<string, unknown>> = [];
  const listeners = new Set<(r: Record<string, unknown>) => void>();
  const out: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
    logs.push(line);
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    records.push(record);
    for (const l of [...listeners]) l(record);
  });

  const waitForLog = (match: (r: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const found = records.find(match);
      if (found !== undefined) {
        resolve(found);
        return;
      }
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`no matching log line within ${timeoutMs} ms; last lines:\n${logs.slice(-15).join('\n')}`));
      }, timeoutMs);
      const listener = (r: Record<string, unknown>): void => {
        if (!match(r)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(r);
      };
      listeners.add(listener);
    });

  return new Promise((resolve, reject) => {
    const timeoutMs = options.timeoutMs ?? 20_000;
    let settled = false;
    void exited.then((code) => {
      if (settled) return;
      settled = true;
      reject(new Error(`aggregator exited (${code}) before listening:\n${logs.join('\n')}`));
    });
    waitForLog((r) => r.msg === 'listening', timeoutMs).then(
      (record) => {
        if (settled) return;
        settled = true;
        const grpcPort = Number(record.grpcPort);
        const metricsPort = Number(record.metricsPort);
        const http = async (path: string): Promise<{ status: number; body: string }> => {
          const res = await fetch(`http://127.0.0.1:${metricsPort}${path}`);
          return { status: res.status, body: await res.text() };
        };
        resolve({
          child,
          grpcPort,
          metricsPort,
          address: `127.0.0.1:${grpcPort}`,
          logs,
          stdout: () => Buffer.concat(out),
          exited,
          waitForLog,
          http,
          metric: async (name, labels) => parseMetric((await http('/metrics')).body, name, labels),
          stop: async (graceMs = 15_000) => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
            const result = await exited;
            clearTimeout(timer);
            return result;
          },
          kill: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
            return exited;
          },
        });
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        child.kill('SIGKILL');
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** Runs the aggregator to completion (bad configuration, sub-commands): exit code, stdout, stderr. */
export function runAggregator(
  env: Record<string, string>,
  args: readonly string[] = [],
  timeoutMs = 20_000,
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AGGREGATOR_MAIN, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`aggregator ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? 'unknown', stdout, stderr });
    });
  });
}

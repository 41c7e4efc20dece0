import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * Runs one of our programs (`node dist/cmd/<name>/main.js`) as a child process: the one child-process
 * helper of the tests, the benchmarks and the demo, which all run the real programs. `startProgram`
 * waits for the JSON log line that says the program is up (e.g. `msg: "listening"`); `runProgram` runs
 * one to completion (a sub-command, a configuration error). Support code, not part of the product:
 * it lives outside src/.
 */
export type LogRecord = Record<string, unknown>;

export interface RunningProgram {
  readonly child: ChildProcess;
  /** The log record that announced readiness. */
  readonly ready: LogRecord;
  /** Resolves with the exit code (or the signal name) when the process exits. */
  readonly exited: Promise<number | string>;
  /** Every stderr line so far (only with `keepLogs`; empty otherwise). */
  readonly logs: readonly string[];
  /** Everything written to stdout so far (only with `stdout: 'pipe'`). */
  stdout(): Buffer;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (or signal name). */
  stop(graceMs?: number): Promise<number | string>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<number | string>;
  /** Resolves with the first log record satisfying `match`, past or future (needs `keepLogs`). */
  waitForLog(match: (record: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
}

export interface StartProgramOptions {
  readonly script: string;
  readonly args?: readonly string[];
  /** Options for node itself, e.g. ['--cpu-prof'] (not allowed in NODE_OPTIONS). */
  readonly nodeArgs?: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly readyMessage: string;
  readonly timeoutMs?: number;
  /** Receives every stderr line (JSON log records and anything else). */
  readonly onStderrLine?: (line: string) => void;
  /** Keep every stderr line and log record, for `logs` and `waitForLog` (tests; not a long-running demo). */
  readonly keepLogs?: boolean;
  /**
   * Own process group: a terminal's Ctrl-C then reaches only the parent, which stops the children in
   * its own order (the demo: collector first, so it can still reach the aggregator).
   */
  readonly ownProcessGroup?: boolean;
  /** Where the child's stdout goes: inherited (demo), ignored (benchmarks) or kept for `stdout()` (tests). */
  readonly stdout?: 'inherit' | 'ignore' | 'pipe';
}

/** Children still running: killed when this process exits, whatever the path. */
const live = new Set<ChildProcess>();
let reaperInstalled = false;

function track(child: ChildProcess): void {
  if (!reaperInstalled) {
    reaperInstalled = true;
    process.once('exit', () => {
      for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

function exitOf(child: ChildProcess): Promise<number | string> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
}

export function startProgram(options: StartProgramOptions): Promise<RunningProgram> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.script, ...(options.args ?? [])], {
    env: options.env,
    stdio: ['ignore', options.stdout ?? 'ignore', 'pipe'],
    detached: options.ownProcessGroup === true,
  });
  track(child);
  const exited = exitOf(child);
  const out: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  const logs: string[] = [];
  const records: LogRecord[] = [];
  const listeners = new Set<(r: LogRecord) => void>();
  const recent: string[] = [];
  const lastLines = (): string => (options.keepLogs === true ? logs.slice(-15) : recent).join('\n');

  const waitForLog = (match: (r: LogRecord) => boolean, timeoutMs = 20_000): Promise<LogRecord> =>
    new Promise((resolve, reject) => {
      const found = records.find(match);
      if (found !== undefined) return resolve(found);
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`${options.script}: no matching log line within ${timeoutMs} ms; last lines:\n${lastLines()}`));
      }, timeoutMs);
      const listener = (r: LogRecord): void => {
        if (!match(r)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(r);
      };
      listeners.add(listener);
    });

  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
    options.onStderrLine?.(line);
    recent.push(line);
    if (recent.length > 20) recent.shift();
    if (options.keepLogs === true) logs.push(line);
    let record: LogRecord;
    try {
      record = JSON.parse(line) as LogRecord;
    } catch {
      return; // not JSON (e.g. a one-line configuration error)
    }
    if (options.keepLogs === true) records.push(record);
    for (const l of [...listeners]) l(record);
  });

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${lastLines()}`));
    };
    void exited.then((code) => fail(new Error(`${options.script} exited (${code}) before it was ready`)));
    // Readiness is the first record with the ready message, whether or not records are kept.
    const readyTimeoutMs = options.timeoutMs ?? 20_000;
    const timer = setTimeout(() => fail(new Error(`${options.script} did not report "${options.readyMessage}" within ${readyTimeoutMs} ms`)), readyTimeoutMs);
    const onReady = (record: LogRecord): void => {
      if (record.msg !== options.readyMessage || settled) return;
      listeners.delete(onReady);
      settled = true;
      clearTimeout(timer);
      resolve({
        child,
        ready: record,
        exited,
        logs,
        stdout: () => Buffer.concat(out),
        waitForLog,
        stop: async (graceMs = 10_000) => {
          if (child.exitCode !== null || child.signalCode !== null) return exited;
          child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
          const result = await exited;
          clearTimeout(kill);
          return result;
        },
        kill: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          return exited;
        },
      });
    };
    listeners.add(onReady);
  });
}

export interface ProgramResult {
  /** The exit code, or the signal name. */
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program to completion; rejects (after SIGKILL) when it does not exit within `timeoutMs`. */
export function runProgram(options: { readonly script: string; readonly args?: readonly string[]; readonly env: NodeJS.ProcessEnv; readonly timeoutMs?: number }): Promise<ProgramResult> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const args = options.args ?? [];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [options.script, ...args], { env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${options.script} ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? 'unknown', stdout, stderr });
    });
  });
}

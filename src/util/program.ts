import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * Starts one of our programs as a child process and waits for the JSON log line that says it is up
 * (e.g. `msg: "listening"`). Used by the demo and the benchmarks, which run the real programs.
 */
export interface RunningProgram {
  readonly child: ChildProcess;
  /** The log record that announced readiness. */
  readonly ready: Record<string, unknown>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (or signal name). */
  stop(graceMs?: number): Promise<number | string>;
  /** Resolves when the process exits. */
  readonly exited: Promise<number | string>;
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
  /**
   * Own process group: a terminal's Ctrl-C then reaches only the parent, which stops the children in
   * its own order (the demo: collector first, so it can still reach the aggregator).
   */
  readonly ownProcessGroup?: boolean;
  /** Where the child's stdout goes: inherited (demo) or ignored (benchmarks). */
  readonly stdout?: 'inherit' | 'ignore' | 'pipe';
}

export function startProgram(options: StartProgramOptions): Promise<RunningProgram> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.script, ...(options.args ?? [])], {
    env: options.env,
    stdio: ['ignore', options.stdout ?? 'ignore', 'pipe'],
    detached: options.ownProcessGroup === true,
  });
  // Never leave a child behind when this process exits, whatever the path.
  const reap = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', reap);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      process.off('exit', reap);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    const recent: string[] = [];
    const timer = setTimeout(() => fail(new Error(`${options.script} did not report "${options.readyMessage}" in time`)), options.timeoutMs ?? 20_000);
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n${recent.join('\n')}`));
    };
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      options.onStderrLine?.(line);
      if (settled) return;
      recent.push(line);
      if (recent.length > 20) recent.shift();
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (record.msg !== options.readyMessage) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        child,
        ready: record,
        exited,
        stop: async (graceMs = 10_000) => {
          if (child.exitCode !== null || child.signalCode !== null) return exited;
          child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
          const result = await exited;
          clearTimeout(kill);
          return result;
        },
      });
    });
    void exited.then((code) => fail(new Error(`${options.script} exited (${code}) before it was ready`)));
  });
}

/** Reads one counter or gauge (summed over its label sets) from a Prometheus text endpoint. */
export async function scrapeMetric(port: number, name: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const body = await res.text();
  let total = 0;
  for (const line of body.split('\n')) {
    if (line.startsWith('#')) continue;
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

import { appendFileSync, copyFileSync, existsSync, renameSync, truncateSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes numbered lines to log files the way applications and logrotate do, and remembers every line
 * written, so a test can check delivery against it. Lines are unique: `<stream> <seq> <padding>`.
 */
export class LogWriter {
  readonly written: string[] = [];
  private readonly seq = new Map<string, number>();
  private readonly copies = new Map<string, number>();

  constructor(
    readonly dir: string,
    private readonly padding = 'p'.repeat(60),
  ) {}

  path(stream: string): string {
    return join(this.dir, `${stream}.log`);
  }

  /** Appends `count` lines to `<stream>.log` in one write (O_APPEND, like a logging library). */
  append(stream: string, count: number): void {
    let n = this.seq.get(stream) ?? 0;
    const lines: string[] = [];
    for (let i = 0; i < count; i++) lines.push(`${stream} ${String(n++).padStart(8, '0')} ${this.padding}`);
    this.seq.set(stream, n);
    appendFileSync(this.path(stream), `${lines.join('\n')}\n`);
    this.written.push(...lines);
  }

  /** logrotate's default: shift `.1` → `.2` ..., rename the live file to `.1`; the next append creates it anew. */
  rotateRename(stream: string, keep = 5): void {
    const base = this.path(stream);
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${base}.${i}`)) renameSync(`${base}.${i}`, `${base}.${i + 1}`);
    if (existsSync(base)) renameSync(base, `${base}.1`);
  }

  /** logrotate's copytruncate: copy the live file aside, then truncate it in place. */
  rotateCopyTruncate(stream: string): void {
    const n = (this.copies.get(stream) ?? 0) + 1;
    this.copies.set(stream, n);
    copyFileSync(this.path(stream), `${this.path(stream)}.c${n}`);
    truncateSync(this.path(stream), 0);
  }
}

/** Appends 25 lines to `one.log` and to `two.log` every few ms until stopped (the crash tests' load). */
export function writeContinuously(writer: LogWriter): { stop(): Promise<void> } {
  let running = true;
  const done = (async () => {
    while (running) {
      writer.append('one', 25);
      writer.append('two', 25);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

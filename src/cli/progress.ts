import type { Clock } from '../util/clock.js';

/** Where progress goes: a terminal (stderr), or nothing. */
export interface ProgressSink {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

const MiB = 1024 * 1024;

function formatBytes(n: number): string {
  return n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${Math.ceil(s)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${Math.ceil(s % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

/** One progress line: entries, bytes read of the total, rate and ETA. Pure, for tests. */
export function progressLine(label: string, entries: number, bytes: number, totalBytes: number, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? (bytes / elapsedMs) * 1000 : 0;
  const eta = rate > 0 ? Math.max(0, totalBytes - bytes) / rate : Number.POSITIVE_INFINITY;
  const pct = totalBytes > 0 ? Math.min(100, (bytes / totalBytes) * 100).toFixed(0) : '100';
  return `${label}: ${entries} entries, ${formatBytes(bytes)} of ${formatBytes(totalBytes)} (${pct}%), ${formatBytes(rate)}/s, ETA ${formatSeconds(eta)}`;
}

/**
 * A progress line redrawn in place on a terminal at most every `intervalMs`; on anything else
 * (a pipe, a file, a CI log) it writes nothing at all.
 */
export class Progress {
  private readonly started: number;
  private last = Number.NEGATIVE_INFINITY;
  private drawn = false;

  constructor(
    private readonly sink: ProgressSink,
    private readonly label: string,
    private readonly totalBytes: number,
    private readonly clock: Clock,
    private readonly intervalMs = 250,
  ) {
    this.started = clock.now();
  }

  update(entries: number, bytes: number): void {
    if (this.sink.isTTY !== true) return;
    const now = this.clock.now();
    if (now - this.last < this.intervalMs) return;
    this.last = now;
    this.drawn = true;
    this.sink.write(`\r\x1b[K${progressLine(this.label, entries, bytes, this.totalBytes, now - this.started)}`);
  }

  /** Clears the line (the caller prints its summary). */
  finish(): void {
    if (this.drawn) this.sink.write('\r\x1b[K');
  }
}

import type { Clock } from '../util/clock.js';

/**
 * Lets at most `burst` records through per `intervalMs` window and counts the rest, so a flood (a
 * scanner hammering the TLS port) cannot flood the log. The first record after a window with
 * suppressed ones says how many were held back (`suppressed`).
 */
export class RateLimitedLog<T extends object> {
  private windowStart = Number.NEGATIVE_INFINITY;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly options: { readonly clock: Clock; readonly intervalMs: number; readonly burst: number; readonly write: (record: T & { suppressed?: number }) => void },
  ) {}

  /** Writes `record` now, or counts it as suppressed. Returns whether it was written. */
  log(record: T): boolean {
    const now = this.options.clock.now();
    if (now - this.windowStart >= this.options.intervalMs) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.options.burst) {
      this.suppressed++;
      return false;
    }
    this.inWindow++;
    const held = this.suppressed;
    this.suppressed = 0;
    this.options.write(held > 0 ? { ...record, suppressed: held } : record);
    return true;
  }
}

/**
 * When each idle file is looked at again. A file found idle is read again after COLLECTOR_POLL_INTERVAL,
 * and each further idle look doubles the wait, up to COLLECTOR_POLL_MAX_INTERVAL, as Filebeat's
 * harvesters back off (`backoff`, `max_backoff`). Data, a truncation, or a change event the directory
 * watch reports for its path puts a file back to the short interval (the event also reads it at once).
 *
 * Why: every look is a read and a `stat` through the thread pool. With the fixed 250 ms, a collector
 * tailing 1,000 quiet files made 8,000 of them a second and spent 10-15 % of a core doing nothing
 * (bench/README.md, "Many files, ninth session"); the directory watch already names every file that is
 * written, so the polls are the safety net for lost events and file systems without them.
 */
export class IdleSchedule<K extends object> {
  private readonly next = new WeakMap<K, { at: number; waitMs: number }>();

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    if (!(minMs > 0) || !(maxMs >= minMs)) throw new RangeError(`IdleSchedule: need 0 < minMs <= maxMs (got ${minMs}, ${maxMs})`);
  }

  /** Is `key` due for a look at `now`? (Never looked at, or its wait is over.) */
  due(key: K, now: number): boolean {
    const n = this.next.get(key);
    return n === undefined || n.at <= now;
  }

  /**
   * `key` was found idle at `now`: its next look waits twice as long as the last, within the bounds,
   * and not past `deadline` (when a look would do something: send a pending multiline entry or an
   * unterminated last line, finish a rotated-away file).
   */
  idle(key: K, now: number, deadline?: number): void {
    const prev = this.next.get(key);
    const waitMs = prev === undefined ? this.minMs : Math.min(this.maxMs, prev.waitMs * 2);
    const at = deadline !== undefined && deadline > now ? Math.min(now + waitMs, deadline) : now + waitMs;
    this.next.set(key, { at, waitMs });
  }

  /** `key` had data, was truncated or was named by an event: looked at again at once, then from the short wait. */
  active(key: K): void {
    this.next.delete(key);
  }

  /** The wait before `key`'s next look (0 when due at once). */
  waitMs(key: K): number {
    return this.next.get(key)?.waitMs ?? 0;
  }
}

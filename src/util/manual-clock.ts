import type { Clock, TimerHandle } from './clock.js';

interface ManualTimer extends TimerHandle {
  readonly id: number;
  readonly due: number;
  readonly fn: () => void;
}

/**
 * A Clock that only moves when told to. Timers fire in due order (ties in creation order) as
 * `advance` passes them; a timer set by a firing timer fires in the same advance if it falls due.
 */
export class ManualClock implements Clock {
  private current: number;
  private nextId = 1;
  private readonly timers = new Map<number, ManualTimer>();

  constructor(startMs = 1_700_000_000_000) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  monotonicNs(): bigint {
    return BigInt(Math.round(this.current * 1e6));
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { id: this.nextId++, due: this.current + Math.max(0, ms), fn, unref: () => undefined };
    this.timers.set(timer.id, timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete((handle as ManualTimer).id);
  }

  /** Number of timers waiting to fire. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (let next = this.nextDue(target); next !== undefined; next = this.nextDue(target)) this.fire(next);
    this.current = target;
  }

  /**
   * Moves time forward by `ms` like `advance`, but lets the code under test run between timers: before
   * the first timer and after each one it waits until the microtask queue is empty (every promise
   * continuation queued so far, and every one those queue, has run), so a timer that a continuation sets
   * fires in this advance if it falls due. `stepMs` also stops at every step boundary (time passes in
   * steps as continuations see it).
   */
  async advanceAsync(ms: number, stepMs = ms): Promise<void> {
    const target = this.current + ms;
    const step = stepMs > 0 ? stepMs : Math.max(ms, 0);
    await settled();
    for (;;) {
      const stepEnd = Math.min(target, this.current + step);
      for (let next = this.nextDue(stepEnd); next !== undefined; next = this.nextDue(stepEnd)) {
        this.fire(next);
        await settled();
      }
      this.current = Math.max(this.current, stepEnd);
      if (stepEnd >= target) return;
    }
  }

  /** The timer that fires next if it is due by `until` (earliest due, ties in creation order). */
  private nextDue(until: number): ManualTimer | undefined {
    let next: ManualTimer | undefined;
    for (const t of this.timers.values()) {
      if (t.due <= until && (next === undefined || t.due < next.due || (t.due === next.due && t.id < next.id))) next = t;
    }
    return next;
  }

  private fire(timer: ManualTimer): void {
    this.timers.delete(timer.id);
    this.current = Math.max(this.current, timer.due);
    timer.fn();
  }
}

/**
 * Node's setImmediate as it was when this module loaded (test fake timers installed later cannot stop
 * it). Node runs every queued microtask, and every microtask those queue, before the next macrotask,
 * so one turn is the point where promise continuations have settled; @sinonjs/fake-timers' tickAsync
 * (behind vitest's advanceTimersByTimeAsync) waits the same way. No real time passes and no I/O is
 * started: pure code under test reaches the same state every run.
 */
const nextMacrotask = globalThis.setImmediate;

function settled(): Promise<void> {
  return new Promise((resolve) => nextMacrotask(resolve));
}

/**
 * Time, injected. Everything that waits or measures (batcher, backoff, tailer timers, Aeron state
 * machines) takes a Clock so tests run in virtual time (see ManualClock).
 */
export interface TimerHandle {
  /** Keep the process alive for this timer? Mirrors Node's Timeout#unref. */
  unref(): void;
}

export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch (may be fractional). */
  now(): number;
  /** Monotonic nanoseconds, for intervals. */
  monotonicNs(): bigint;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Uniform in [0, 1), like Math.random. */
export type Random = () => number;

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicNs: () => process.hrtime.bigint(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export const systemRandom: Random = Math.random;

/** Resolves after `ms` on the given clock, or rejects with the signal's reason when aborted. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

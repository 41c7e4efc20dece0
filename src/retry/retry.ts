import type { Clock, Random } from '../util/clock.js';
import { sleep } from '../util/clock.js';
import type { BackoffPolicy } from './backoff.js';
import { backoffDelayMs } from './backoff.js';

/** What one attempt produced: a value, or what it threw. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/**
 * The classifier's verdict on an outcome: keep it (a success, or a failure not worth retrying), or try
 * again, with the error to report and, optionally, the peer's own hint (Retry-After).
 */
export type Verdict = { readonly retry: false } | { readonly retry: true; readonly error: Error; readonly retryAfterMs?: number };

export const KEEP: Verdict = Object.freeze({ retry: false });

/** A failed attempt that will be retried, for logs, metrics and escalation. */
export interface RetryFailure {
  /** Failed attempts so far (1 on the first failure). */
  readonly failures: number;
  readonly error: Error;
  /** The wait before the next attempt. */
  readonly delayMs: number;
}

export interface RetryOptions<T> {
  readonly policy: BackoffPolicy;
  readonly clock: Clock;
  readonly random: Random;
  /** Decides what an outcome means. Default: a value is kept, a throw is retried. */
  readonly classify?: (outcome: Outcome<T>) => Verdict;
  /** Stops retrying (the last outcome is returned or thrown); a wait in progress ends at once. */
  readonly signal?: AbortSignal;
  /** Attempts in all, the first included; default unbounded. */
  readonly maxAttempts?: number;
  /**
   * Called before each wait with the computed delay; may return a different one (e.g. the maximum
   * delay while an escalated outage lasts). Metrics and logs hook in here.
   */
  readonly onFailure?: (failure: RetryFailure) => number | void;
}

function defaultClassify<T>(outcome: Outcome<T>): Verdict {
  if (outcome.ok) return KEEP;
  return { retry: true, error: outcome.error instanceof Error ? outcome.error : new Error(String(outcome.error)) };
}

/**
 * The one retry loop of the code base. Runs `attempt` until the classifier keeps an outcome, the
 * attempts are used up, or the signal aborts, waiting between attempts for the policy's backoff with
 * full jitter (never less than a Retry-After hint, capped at the policy's maximum). The last outcome
 * is returned when it is a value and thrown when it is an error, so callers see what really happened.
 * Attempt numbers start at 0.
 */
export async function retry<T>(attempt: (n: number) => Promise<T>, options: RetryOptions<T>): Promise<T> {
  const classify = options.classify ?? defaultClassify;
  const maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
  for (let n = 0; ; n++) {
    let outcome: Outcome<T>;
    try {
      outcome = { ok: true, value: await attempt(n) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const verdict = classify(outcome);
    if (!verdict.retry || n + 1 >= maxAttempts || options.signal?.aborted === true) return settle(outcome);
    const backoff = backoffDelayMs(options.policy, n, options.random);
    const hinted = Math.min(verdict.retryAfterMs ?? 0, options.policy.maxDelayMs);
    const computed = Math.max(backoff, hinted);
    const chosen = options.onFailure?.({ failures: n + 1, error: verdict.error, delayMs: computed });
    try {
      await sleep(options.clock, typeof chosen === 'number' ? chosen : computed, options.signal);
    } catch {
      return settle(outcome);
    }
  }
}

function settle<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw outcome.error;
}

/**
 * The same policy for event-driven retries that have no loop to run (a stream reconnect scheduled
 * from a callback, a queue drained by a timer): `next()` gives the wait before the next try and
 * counts it, `reset()` after a success starts again from the initial delay.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: Random,
  ) {}

  /** Failed attempts since the last reset. */
  get failures(): number {
    return this.attempt;
  }

  next(): number {
    return backoffDelayMs(this.policy, this.attempt++, this.random);
  }

  reset(): void {
    this.attempt = 0;
  }
}

import type { Random } from '../util/clock.js';

/**
 * Exponential backoff with full jitter, as a pure function of the attempt number and a random draw
 * (decides WHEN to retry; what is retryable is the emitter's business). Injected randomness keeps the
 * retry tests deterministic.
 */
export interface BackoffPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Growth of the ceiling per attempt; 2 doubles it. */
  readonly multiplier?: number;
}

/** The ceiling for `attempt` (0-based): initial × multiplier^attempt, capped at the maximum. */
export function backoffCeilingMs(policy: BackoffPolicy, attempt: number): number {
  const multiplier = policy.multiplier ?? 2;
  const ceiling = policy.initialDelayMs * multiplier ** Math.max(0, attempt);
  return Math.min(policy.maxDelayMs, Number.isFinite(ceiling) ? ceiling : policy.maxDelayMs);
}

/**
 * The delay before retry number `attempt` (0-based): uniform between the initial delay and the
 * attempt's ceiling ("full jitter", floored at the initial delay so a retry never comes at once).
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: Random): number {
  const low = Math.min(policy.initialDelayMs, policy.maxDelayMs);
  const high = backoffCeilingMs(policy, attempt);
  const r = Math.min(Math.max(random(), 0), 1);
  return low + (high - low) * r;
}

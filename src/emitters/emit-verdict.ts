import type { Outcome, Verdict } from '../retry/retry.js';
import { KEEP } from '../retry/retry.js';
import type { EmitResult } from './emitter.js';

/**
 * How the retry module reads an emit: a retryable result is tried again (honouring its
 * retryAfterMs); ok and fatal are kept; a throw (which the Emitter contract forbids) is kept so it
 * surfaces to the caller instead of being retried blindly.
 */
export function emitVerdict(outcome: Outcome<EmitResult>): Verdict {
  if (!outcome.ok || outcome.value.kind !== 'retryable') return KEEP;
  const { error, retryAfterMs } = outcome.value;
  return retryAfterMs === undefined ? { retry: true, error } : { retry: true, error, retryAfterMs };
}

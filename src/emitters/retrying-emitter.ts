import type { Logger } from '../telemetry/logger.js';
import type { Clock, Random } from '../util/clock.js';
import { systemClock, systemRandom } from '../util/clock.js';
import type { BackoffPolicy } from '../retry/backoff.js';
import { retry } from '../retry/retry.js';
import { emitVerdict } from './emit-verdict.js';
import type { Batch, EmitResult, Emitter } from './emitter.js';
import type { Notifier } from './notifier.js';

/** The emitter RetryingEmitter wraps, its retry policy and where an outage is escalated. */
export interface RetryingEmitterOptions {
  readonly inner: Emitter;
  readonly policy: BackoffPolicy;
  /** Failed attempts of one batch before the outage is escalated (AGGREGATOR_EMIT_MAX_RETRIES). */
  readonly maxRetries: number;
  readonly notifier: Notifier;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly logger?: Logger;
  /** Called for every failed attempt that will be retried (metrics). */
  readonly onRetry?: (error: Error, attempt: number, delayMs: number) => void;
}

/**
 * Retries a retryable result of the wrapped emitter with exponential backoff and full jitter, until
 * the batch goes through or the caller aborts. The batch is never given up: after `maxRetries`
 * failures of one batch the outage is escalated once (notifier.trigger) and retries continue at the
 * maximum delay; the first success afterwards resolves it. One incident per outage, however many
 * batches wait behind it.
 */
export class RetryingEmitter implements Emitter {
  readonly name: string;
  readonly joinsBatches: boolean | undefined;
  private readonly clock: Clock;
  private readonly random: Random;
  private inOutage = false;

  constructor(private readonly options: RetryingEmitterOptions) {
    this.name = options.inner.name;
    this.joinsBatches = options.inner.joinsBatches;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
  }

  /** Is an escalated outage in progress? */
  get outage(): boolean {
    return this.inOutage;
  }

  async start(): Promise<void> {
    await this.options.inner.start?.();
  }

  async emit(batch: Batch, signal: AbortSignal): Promise<EmitResult> {
    const { inner, policy, notifier, logger } = this.options;
    const escalateAfter = Math.max(1, this.options.maxRetries);
    let failures = 0;
    const result = await retry(() => inner.emit(batch, signal), {
      policy,
      clock: this.clock,
      random: this.random,
      signal,
      classify: emitVerdict,
      onFailure: (failure) => {
        failures = failure.failures;
        if (!this.inOutage && failures >= escalateAfter) {
          this.inOutage = true;
          logger?.error({ batch: batch.id, failures, err: failure.error.message }, 'emit keeps failing; escalating');
          notifier.trigger(failure.error);
        }
        // During an escalated outage, retry at the maximum delay (Retry-After is capped there too).
        const delayMs = this.inOutage ? policy.maxDelayMs : failure.delayMs;
        this.options.onRetry?.(failure.error, failures, delayMs);
        logger?.warn({ batch: batch.id, attempt: failures, delayMs: Math.round(delayMs), err: failure.error.message }, 'emit failed; retrying');
        return delayMs;
      },
    });
    if (result.kind !== 'retryable' && this.inOutage) {
      this.inOutage = false;
      logger?.info({ batch: batch.id, failures }, 'emitter recovered; resolving the incident');
      notifier.resolve();
    }
    return result;
  }

  async reopen(): Promise<void> {
    await this.options.inner.reopen?.();
  }

  async close(): Promise<void> {
    await this.options.inner.close();
  }
}

import type { Logger } from '../telemetry/logger.js';
import type { Clock, Random } from '../util/clock.js';
import { sleep, systemClock, systemRandom } from '../util/clock.js';
import type { BackoffPolicy } from './backoff.js';
import { backoffDelayMs } from './backoff.js';
import type { Batch, EmitResult, Emitter } from './emitter.js';
import type { Notifier } from './notifier.js';

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
  private readonly clock: Clock;
  private readonly random: Random;
  private inOutage = false;

  constructor(private readonly options: RetryingEmitterOptions) {
    this.name = options.inner.name;
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
    for (;;) {
      const result = await inner.emit(batch, signal);
      if (result.kind !== 'retryable') {
        if (this.inOutage) {
          this.inOutage = false;
          logger?.info({ batch: batch.id, failures }, 'emitter recovered; resolving the incident');
          notifier.resolve();
        }
        return result;
      }
      failures++;
      if (signal.aborted) return result;
      if (!this.inOutage && failures >= escalateAfter) {
        this.inOutage = true;
        logger?.error({ batch: batch.id, failures, err: result.error.message }, 'emit keeps failing; escalating');
        notifier.trigger(result.error);
      }
      const backoff = this.inOutage ? policy.maxDelayMs : backoffDelayMs(policy, failures - 1, this.random);
      // An emitter may know better (e.g. Retry-After); honour it, but never wait beyond the maximum.
      const delayMs = Math.max(backoff, Math.min(result.retryAfterMs ?? 0, policy.maxDelayMs));
      this.options.onRetry?.(result.error, failures, delayMs);
      logger?.warn({ batch: batch.id, attempt: failures, delayMs: Math.round(delayMs), err: result.error.message }, 'emit failed; retrying');
      try {
        await sleep(this.clock, delayMs, signal);
      } catch {
        return result;
      }
    }
  }

  async reopen(): Promise<void> {
    await this.options.inner.reopen?.();
  }

  async close(): Promise<void> {
    await this.options.inner.close();
  }
}

import type { EventPayloadV2 } from '@pagerduty/pdjs/build/src/events.js';
import type { Logger } from '../telemetry/logger.js';
import type { Clock, Random } from '../util/clock.js';
import { systemClock, systemRandom } from '../util/clock.js';
import { errorMessage } from '../errors.js';
import type { BackoffPolicy } from '../retry/backoff.js';
import { KEEP, retry } from '../retry/retry.js';
import type { Outcome, Verdict } from '../retry/retry.js';
import type { Notifier } from './notifier.js';

/** The notify configuration's PagerDuty settings (AGGREGATOR_NOTIFY_CONFIGURATION). */
export interface PagerDutyConfig {
  readonly integration_key: string;
  readonly incident_key: string;
  readonly identifier: string;
  /** Events API host ("events.pagerduty.com", "127.0.0.1:8443" or an https:// URL). */
  readonly server?: string;
}

export type NotifyAction = 'trigger' | 'resolve';
export type NotifyOutcome = 'success' | 'failure' | 'rejected' | 'dropped';

/** Sends one Events API v2 event; resolves with the HTTP status (throws on network failure). */
export type EventSender = (server: string | undefined, data: EventPayloadV2, signal: AbortSignal) => Promise<number>;

export const pdjsSender: EventSender = async (server, data, signal) => {
  // Imported on the first event: pdjs and its fetch polyfill cost every aggregator start ~15 ms of CPU
  // and a few MiB, and most aggregators never page.
  const { event } = await import('@pagerduty/pdjs');
  const response = await event({
    data,
    ...(server === undefined ? {} : { server }),
    requestTimeout: 10_000,
    signal,
  } as Parameters<typeof event>[0]);
  return response.status;
};

/** PagerDutyNotifier's configuration, injected clock and randomness, and hooks. */
export interface PagerDutyNotifierOptions {
  readonly config: PagerDutyConfig;
  /** Name of the failing emitter, for the summary. */
  readonly emitterName: string;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly send?: EventSender;
  /** Backoff between attempts to reach the Events API. */
  readonly retry?: BackoffPolicy;
  readonly maxQueue?: number;
  readonly onNotification?: (action: NotifyAction, outcome: NotifyOutcome) => void;
}

interface Pending {
  readonly action: NotifyAction;
  readonly data: EventPayloadV2;
}

/** pdjs builds `https://${server}/v2/enqueue`: accept a URL too and keep only host[:port]. */
export function eventsApiHost(server: string | undefined): string | undefined {
  if (server === undefined) return undefined;
  return server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
}

/**
 * PagerDuty Events API v2 via @pagerduty/pdjs. trigger/resolve only queue the event: a background loop
 * sends the queue in order (a resolve never overtakes its trigger) and retries with backoff when
 * PagerDuty is unreachable or answers 429/5xx, so escalation trouble never blocks delivery.
 */
export class PagerDutyNotifier implements Notifier {
  private readonly queue: Pending[] = [];
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly send: EventSender;
  private readonly retry: BackoffPolicy;
  private readonly server: string | undefined;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: PagerDutyNotifierOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.send = options.send ?? pdjsSender;
    this.retry = options.retry ?? { initialDelayMs: 1000, maxDelayMs: 60_000 };
    this.server = eventsApiHost(options.config.server);
  }

  trigger(error: Error): void {
    const { config, emitterName } = this.options;
    this.enqueue({
      action: 'trigger',
      data: {
        routing_key: config.integration_key,
        event_action: 'trigger',
        dedup_key: config.incident_key,
        payload: {
          summary: `${config.identifier}: ${emitterName} emitter failing, batches held in the spool: ${error.message}`.slice(0, 1024),
          source: config.identifier,
          severity: 'critical',
          timestamp: new Date(this.clock.now()).toISOString(),
          component: 'mega-aggregator',
          custom_details: { emitter: emitterName, error: error.message },
        },
      },
    });
  }

  resolve(): void {
    const { config, emitterName } = this.options;
    this.enqueue({
      action: 'resolve',
      data: {
        routing_key: config.integration_key,
        event_action: 'resolve',
        dedup_key: config.incident_key,
        payload: {
          summary: `${config.identifier}: ${emitterName} emitter recovered`,
          source: config.identifier,
          severity: 'info',
          timestamp: new Date(this.clock.now()).toISOString(),
        },
      },
    });
  }

  private enqueue(item: Pending): void {
    if (this.closed) return;
    if (this.queue.length >= (this.options.maxQueue ?? 100)) {
      const dropped = this.queue.shift() as Pending;
      this.options.onNotification?.(dropped.action, 'dropped');
      this.options.logger?.error({ action: dropped.action }, 'notification queue full; dropped the oldest notification');
    }
    this.queue.push(item);
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /** Sends the queue in order; each event is tried (with backoff) until sent, refused, or closed. */
  private async drain(): Promise<void> {
    const { logger, onNotification } = this.options;
    while (this.queue.length > 0 && !this.abort.signal.aborted) {
      const item = this.queue[0] as Pending;
      let status: number;
      // A failed attempt is counted when its retry is scheduled, or here when closing ends the retries.
      let uncounted = false;
      const attempt = (): Promise<number> => {
        uncounted = true;
        return this.send(this.server, item.data, this.abort.signal);
      };
      try {
        status = await retry(attempt, {
          policy: this.retry,
          clock: this.clock,
          random: this.random,
          signal: this.abort.signal,
          classify: pagerDutyVerdict,
          onFailure: (f) => {
            uncounted = false;
            onNotification?.(item.action, 'failure');
            logger?.warn({ action: item.action, err: f.error.message, retryInMs: Math.round(f.delayMs) }, 'PagerDuty event failed; retrying');
          },
        });
      } catch {
        if (uncounted) onNotification?.(item.action, 'failure');
        return; // closed while PagerDuty was unreachable
      }
      if (status >= 200 && status < 300) {
        this.queue.shift();
        onNotification?.(item.action, 'success');
        logger?.info({ action: item.action, dedupKey: item.data.dedup_key }, 'PagerDuty event sent');
      } else if (status >= 400 && status < 500 && status !== 429) {
        // The Events API refused the event itself (bad routing key, malformed): retrying cannot help.
        this.queue.shift();
        onNotification?.(item.action, 'rejected');
        logger?.error({ action: item.action, status }, 'PagerDuty refused the event; not retrying');
      } else {
        if (uncounted) onNotification?.(item.action, 'failure');
        return; // closed while PagerDuty answered 429/5xx
      }
    }
  }

  /** Gives queued events up to `deadlineMs` to go out, then stops (what is left is logged). */
  async close(deadlineMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const running = this.running;
    if (running !== undefined) {
      let timer: ReturnType<Clock['setTimeout']> | undefined;
      await Promise.race([
        running,
        new Promise<void>((resolve) => {
          timer = this.clock.setTimeout(resolve, deadlineMs);
          timer.unref();
        }),
      ]);
      if (timer !== undefined) this.clock.clearTimeout(timer);
      this.abort.abort();
      await running.catch(() => undefined);
    }
    if (this.queue.length > 0) {
      this.options.logger?.error({ pending: this.queue.map((q) => q.action) }, 'PagerDuty events not sent before shutdown');
    }
  }
}

/**
 * What is worth sending again: a network failure, 429 and 5xx. A 2xx is sent; another 4xx is the
 * API refusing the event itself.
 */
function pagerDutyVerdict(outcome: Outcome<number>): Verdict {
  if (!outcome.ok) return { retry: true, error: outcome.error instanceof Error ? outcome.error : new Error(errorMessage(outcome.error)) };
  const status = outcome.value;
  if ((status >= 200 && status < 300) || (status >= 400 && status < 500 && status !== 429)) return KEEP;
  return { retry: true, error: new Error(`HTTP ${status}`) };
}

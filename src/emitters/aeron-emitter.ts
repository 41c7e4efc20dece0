import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { OfferResult } from '../aeron/publication.js';
import { UdpPublication } from '../aeron/udp-publication.js';
import type { AeronEmitterConfig } from '../config/aeron-config.js';
import { ConfigError, ErrorCode, McError, errorMessage } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { systemClock, systemRandom } from '../util/clock.js';
import type { Clock, Random } from '../util/clock.js';
import { Backoff } from '../retry/retry.js';
import { formatBatch } from './aeron-format.js';
import { ResendMark, resendMarkPath } from './aeron-resend-mark.js';
import type { FormattedBatch } from './aeron-format.js';
import { retryable } from './emitter.js';
import type { Batch, EmitResult, Emitter } from './emitter.js';

export interface AeronEmitterDeps {
  readonly clock?: Clock;
  readonly random?: Random;
  readonly logger?: Logger;
  readonly registry?: Registry;
  /** Longest wait for the receiver's EOS SM on close (Aeron's linger, 5 s). */
  readonly lingerMs?: number;
  /** A receiver silent this long is gone (Aeron's publication connection timeout, 5 s). */
  readonly connectionTimeoutMs?: number;
  /**
   * The aggregator's spool directory: each publication keeps its count of sent, unconfirmed entries
   * there (aeron-resend-mark.ts), so entries sent again after a restart are counted. Without it
   * (replays), they are not.
   */
  readonly stateDir?: string;
}

/**
 * The Aeron counters, under the aggregator's prefix with Prometheus names (unit last, counters end in
 * `_total`; formerly Telegraf's `aeron_publisher_*`, see the README's changelog). Labelled by channel
 * and stream id, present at zero from the emitter's construction.
 */
export const AERON_METRICS = {
  sent: ['mega_aggregator_aeron_messages_sent_total', 'Aeron messages offered into the publication log'],
  dropped: ['mega_aggregator_aeron_messages_dropped_total', 'Aeron messages refused for exceeding max_message_size (kept in the dead-letter file)'],
  bytes: ['mega_aggregator_aeron_transferred_bytes_total', 'Payload bytes offered into the publication log'],
  backpressure: ['mega_aggregator_aeron_backpressure_errors_total', 'offer() calls refused because the flow-control window was full'],
  connection: ['mega_aggregator_aeron_connection_errors_total', 'emits that found no connected receiver within publication_timeout'],
  retries: ['mega_aggregator_aeron_retry_attempts_total', 'back-pressure waits that ended without progress'],
  rejoins: ['mega_aggregator_aeron_rejoins_total', 'receivers that came back without an image of the stream (restart) and made the publication go back to their last reported consumption'],
  restartResent: [
    'mega_aggregator_aeron_restart_resent_entries_total',
    'entries sent again after an aggregator restart: the previous process sent them and no receiver confirmed them, so the spool kept them (a subscriber may see them twice; entries carry their identity)',
  ],
  resent: [
    'mega_aggregator_aeron_rejoin_resent_bytes_total',
    'bytes of the stream sent again because a receiver rejoined: what its subscribers may see twice (at least once; entries carry their identity)',
  ],
} as const;

type MetricKey = keyof typeof AERON_METRICS;

export const AERON_RECEIVERS_METRIC = 'mega_aggregator_aeron_receivers';

/** Run by a counter when it is scraped (prom-client's collect), for counts kept inside the publication. */
const collectHooks = new WeakMap<object, Set<() => void>>();

function counters(registry: Registry | undefined, labels: { channel: string; stream_id: string }, onCollect: () => void): Record<MetricKey, { inc(n?: number): void }> {
  const out = {} as Record<MetricKey, { inc(n?: number): void }>;
  for (const key of Object.keys(AERON_METRICS) as MetricKey[]) {
    const [name, help] = AERON_METRICS[key];
    let counter: Counter<'channel' | 'stream_id'>;
    const existing = registry?.getSingleMetric(name);
    if (existing instanceof Counter) counter = existing as Counter<'channel' | 'stream_id'>;
    else {
      counter = new Counter({
        name,
        help,
        labelNames: ['channel', 'stream_id'],
        registers: registry === undefined ? [] : [registry],
        collect(this: object) {
          for (const hook of collectHooks.get(this) ?? []) hook();
        },
      });
    }
    if (key === 'rejoins' || key === 'resent') {
      const hooks = collectHooks.get(counter) ?? new Set();
      hooks.add(onCollect);
      collectHooks.set(counter, hooks);
    }
    const child = counter.labels(labels);
    child.inc(0);
    out[key] = { inc: (n = 1) => child.inc(n) };
  }
  return out;
}

/** The live receivers gauge: status messages within the liveness timeout (several with multicast or MDC). */
function receiversGauge(registry: Registry | undefined, labels: { channel: string; stream_id: string }, read: () => number): void {
  let gauge: Gauge<'channel' | 'stream_id'>;
  const existing = registry?.getSingleMetric(AERON_RECEIVERS_METRIC);
  if (existing instanceof Gauge) gauge = existing as Gauge<'channel' | 'stream_id'>;
  else {
    gauge = new Gauge({
      name: AERON_RECEIVERS_METRIC,
      help: 'Aeron receivers whose status messages arrived within the last 5 s (the publication confirms a batch once every one of them consumed it)',
      labelNames: ['channel', 'stream_id'],
      registers: registry === undefined ? [] : [registry],
      collect(this: object) {
        for (const hook of collectHooks.get(this) ?? []) hook();
      },
    });
  }
  const child = gauge.labels(labels);
  child.set(0);
  const hooks = collectHooks.get(gauge) ?? new Set();
  hooks.add(() => child.set(read()));
  collectHooks.set(gauge, hooks);
}

/** Where a batch that ran out of retries stopped, so its retry resumes instead of re-offering. */
interface Progress {
  readonly batchId: number;
  readonly entryCount: number;
  readonly formatted: FormattedBatch;
  next: number;
  /** The producer position after this batch's last offered message. */
  end: number;
}

/**
 * The Aeron emitter: publishes each batch on a pure-TypeScript Aeron UDP publication.
 * - ok, with `confirmed`: every message is in the publication's log (offered); `confirmed` resolves
 *   true once a receiver's status message shows its subscribers consumed up to the batch's last
 *   message, and false if the publication closes first. Only then does the spool count the batch as
 *   delivered, so a batch a subscriber never read is emitted again after a restart (at least once;
 *   counted in restart_resent_entries with a stateDir). With `"confirm": "sent"` it resolves once the
 *   batch's last byte left the socket instead: NOT at least once (warned at construction).
 *   Offered data is retained until consumed; a receiver that restarts rejoins at its last consumption
 *   position (see Publication); close() drains to the receiver's EOS SM.
 * - retryable: no receiver within publication_timeout, or back pressure beyond max_retries.
 * - fatal: entries whose message exceeds max_message_size (the rest are published).
 */
export class AeronEmitter implements Emitter {
  readonly name = 'aeron';
  private publication: UdpPublication | undefined;
  private opening: Promise<UdpPublication> | undefined;
  private closing: Promise<void> | undefined;
  private progress: Progress | undefined;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly metrics: Record<MetricKey, { inc(n?: number): void }>;
  /** The publication's rejoin counters already added to the metrics. */
  private readonly reported = { rewinds: 0, rewoundBytes: 0 };
  /** Sent, unconfirmed entries across restarts (with deps.stateDir). */
  private readonly resendMark: ResendMark | undefined;

  constructor(
    readonly config: AeronEmitterConfig,
    private readonly deps: AeronEmitterDeps = {},
  ) {
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? systemRandom;
    // Rejoins happen inside the publication, between emits too: carried into the metrics at each scrape.
    const labels = { channel: config.channel.text, stream_id: String(config.streamId) };
    this.metrics = counters(deps.registry, labels, () => this.syncCounters());
    receiversGauge(deps.registry, labels, () => this.publication?.publication.liveReceivers(this.clock.now()) ?? 0);
    this.resendMark = this.openResendMark();
    if (config.confirm === 'sent') {
      deps.logger?.warn(
        { channel: config.channel.text, streamId: config.streamId, confirm: 'sent' },
        'aeron: "confirm": "sent" counts a batch as delivered once sent, before any receiver has it: NOT at least once (a kill -9, or a subscriber away or slow at a stop, loses what it had not consumed)',
      );
    }
  }

  private openResendMark(): ResendMark | undefined {
    if (this.deps.stateDir === undefined) return undefined;
    const path = resendMarkPath(this.deps.stateDir, this.config.channel.text, this.config.streamId);
    try {
      const mark = ResendMark.open(path, (text) => this.deps.logger?.warn({ path, text }, 'aeron: unreadable count of unconfirmed entries; resends after this restart are not counted'));
      if (mark.pendingResends > 0) {
        this.deps.logger?.info({ channel: this.config.channel.text, streamId: this.config.streamId, entries: mark.pendingResends }, 'aeron: entries sent before the restart and not confirmed are sent again (counted as resent)');
      }
      return mark;
    } catch (err) {
      this.deps.logger?.warn({ path, err: errorMessage(err) }, 'aeron: cannot keep the count of unconfirmed entries; resends after a restart are not counted');
      return undefined;
    }
  }

  /** The publication (opened by start() or the first emit). */
  get udpPublication(): UdpPublication | undefined {
    return this.publication;
  }

  async start(): Promise<void> {
    await this.open();
  }

  private open(): Promise<UdpPublication> {
    this.opening ??= UdpPublication.open({
      channel: this.config.channel,
      streamId: this.config.streamId,
      clock: this.clock,
      random: this.random,
      ...(this.deps.lingerMs === undefined ? {} : { lingerMs: this.deps.lingerMs }),
      ...(this.deps.connectionTimeoutMs === undefined ? {} : { connectionTimeoutMs: this.deps.connectionTimeoutMs }),
    }).then(
      (p) => {
        this.publication = p;
        this.deps.logger?.info({ channel: this.config.channel.text, streamId: this.config.streamId, sessionId: p.sessionId, localPort: p.localPort }, 'aeron publication open');
        return p;
      },
      (err: unknown) => {
        this.opening = undefined;
        // An endpoint that does not resolve, or an interface= address this host does not have.
        throw new ConfigError([`AGGREGATOR_AERON_CONFIGURATION: channel ${this.config.channel.text} cannot be opened: ${errorMessage(err)}`]);
      },
    );
    return this.opening;
  }

  async emit(batch: Batch, signal: AbortSignal): Promise<EmitResult> {
    if (this.closing !== undefined) return retryable(new McError(ErrorCode.ShuttingDown, 'aeron emitter is closing'));
    const pub = await this.open();
    const timeout = this.config.publicationTimeoutMs;
    if (!(await pub.waitForConnected(timeout, signal))) {
      if (signal.aborted) return retryable(new McError(ErrorCode.ShuttingDown, 'emit aborted'));
      this.metrics.connection.inc();
      return retryable(new McError(ErrorCode.NotConnected, `no Aeron receiver connected on ${this.config.channel.text} stream ${this.config.streamId} within ${timeout}ms`));
    }
    let p = this.progress;
    if (p === undefined || p.batchId !== batch.id || p.entryCount !== batch.count) {
      const formatted = formatBatch(batch, this.config.dataFormat, this.config.maxMessageSize);
      p = { batchId: batch.id, entryCount: batch.count, formatted, next: 0, end: pub.publication.producerPosition };
      if (formatted.rejected.length > 0) {
        this.metrics.dropped.inc(formatted.rejected.length);
        this.deps.logger?.warn({ batch: batch.id, rejected: formatted.rejected.length, maxMessageSize: this.config.maxMessageSize }, 'aeron: entries larger than max_message_size go to the dead-letter file');
      }
    }
    this.progress = p;
    const messages = p.formatted.messages;
    // Counted locally and added once per emit: a prom-client inc per message costs more than the offer.
    let sent = 0;
    let sentBytes = 0;
    const flush = (): void => {
      if (sent > 0) {
        this.metrics.sent.inc(sent);
        this.metrics.bytes.inc(sentBytes);
        sent = 0;
        sentBytes = 0;
      }
    };
    // Back pressure is event-driven (a wait ends as soon as the sender moves), so the shared policy is
    // used through Backoff: its delays grow, with jitter, only while waits see no progress.
    const backoff = new Backoff(
      { initialDelayMs: this.config.retryDelayMs, maxDelayMs: this.config.maxRetryDelayMs, multiplier: this.config.retryBackoffMultiplier },
      this.random,
    );
    let delay = this.config.retryDelayMs;
    try {
      while (p.next < messages.length) {
        if (signal.aborted) return retryable(new McError(ErrorCode.ShuttingDown, 'emit aborted'));
        // A run of messages per call: one connection and window check per run, not per message.
        const r = pub.offerBatch(messages, p.next);
        if (r > 0) {
          for (let i = p.next; i < p.next + r; i++) sentBytes += (messages[i] as Buffer).length;
          p.next += r;
          p.end = pub.publication.producerPosition;
          sent += r;
          if (backoff.failures > 0) {
            backoff.reset();
            delay = this.config.retryDelayMs;
          }
          continue;
        }
        flush();
        if (r === OfferResult.NotConnected) {
          if (!(await pub.waitForConnected(timeout, signal))) {
            if (signal.aborted) return retryable(new McError(ErrorCode.ShuttingDown, 'emit aborted'));
            this.metrics.connection.inc();
            return retryable(new McError(ErrorCode.NotConnected, `Aeron receiver on ${this.config.channel.text} lost; ${p.next} of ${messages.length} messages offered`));
          }
          continue;
        }
        if (r === OfferResult.BackPressured) {
          this.metrics.backpressure.inc();
          // Waiting for the sender to move is the normal pace of a full window; only a wait that sees
          // no progress for the whole delay counts as a retry.
          if (await pub.waitForProgress(delay, signal)) continue;
          this.metrics.retries.inc();
          if (backoff.failures >= this.config.maxRetries) {
            return retryable(new McError(ErrorCode.BackPressure, `Aeron back pressure after ${this.config.maxRetries} retries; ${p.next} of ${messages.length} messages offered`));
          }
          delay = backoff.next();
          continue;
        }
        return retryable(new McError(ErrorCode.EmitFailed, 'Aeron publication is closed'));
      }
    } finally {
      flush();
    }
    this.progress = undefined;
    const confirmed = this.config.confirm === 'sent' ? pub.waitForSent(p.end) : pub.waitForConsumed(p.end);
    const mark = this.resendMark;
    if (mark !== undefined) {
      const entries = batch.count - p.formatted.rejected.length;
      const resent = mark.sent(entries);
      if (resent > 0) this.metrics.restartResent.inc(resent);
      void confirmed.then((ok) => {
        if (ok) mark.confirmed(entries);
      });
    }
    if (p.formatted.rejected.length > 0) {
      return {
        kind: 'fatal',
        error: new McError(ErrorCode.EmitRejected, `${p.formatted.rejected.length} entries exceed max_message_size ${this.config.maxMessageSize}`),
        rejected: [...p.formatted.rejected].sort((a, b) => a - b),
        confirmed,
      };
    }
    return { kind: 'ok', confirmed };
  }

  private syncCounters(): void {
    const c = this.publication?.publication.counters;
    if (c === undefined) return;
    if (c.rewinds > this.reported.rewinds) this.metrics.rejoins.inc(c.rewinds - this.reported.rewinds);
    if (c.rewoundBytes > this.reported.rewoundBytes) this.metrics.resent.inc(c.rewoundBytes - this.reported.rewoundBytes);
    this.reported.rewinds = c.rewinds;
    this.reported.rewoundBytes = c.rewoundBytes;
  }

  /** Sends everything offered, EOS until the receiver confirms (or linger ends), then closes. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (this.opening === undefined) return;
        const pub = await this.opening.catch(() => undefined);
        if (pub === undefined) return;
        await pub.close();
        this.syncCounters();
        this.deps.logger?.info({ counters: pub.publication.counters }, 'aeron publication closed');
      } finally {
        this.resendMark?.close();
      }
    })();
    return this.closing;
  }
}

export function createAeronEmitter(config: AeronEmitterConfig, deps: AeronEmitterDeps = {}): AeronEmitter {
  return new AeronEmitter(config, deps);
}

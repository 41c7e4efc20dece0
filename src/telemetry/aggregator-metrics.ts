import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The aggregator's Prometheus metrics, in one registry (not the global one, so tests can build
 * several). Names follow Prometheus conventions: `mega_aggregator_<what>[_<unit>]`, unit last
 * (`_bytes`, `_seconds`), every counter ends in `_total`; "sent"-like counters move only after
 * success. Labelled counters have closed label sets (below) and start at zero for every value, so
 * a dashboard or an alert sees the series before the first event.
 */
export const UNDECODABLE_REASONS = ['compressed_without_encoding', 'not_a_chunk'] as const;
export type UndecodableReason = (typeof UNDECODABLE_REASONS)[number];

/** spool_error: the append failed on disk (not durable, so not acked; the client resends). */
export const REFUSE_REASONS = ['invalid', 'spool_full', 'shutting_down', 'spool_error'] as const;
export type RefuseReason = (typeof REFUSE_REASONS)[number];
/** What cut a batch (the batcher's BatchCause; test/integration/metric-names.test.ts keeps them equal). */
export const BATCH_CAUSES = ['size', 'time', 'drain'] as const;
/** PagerDuty actions and outcomes (the notifier's NotifyAction and NotifyOutcome, kept equal by the same test). */
export const NOTIFY_ACTIONS = ['trigger', 'resolve'] as const;
export const NOTIFY_OUTCOMES = ['success', 'failure', 'rejected', 'dropped'] as const;

export interface AggregatorMetrics {
  readonly registry: Registry;
  readonly entriesReceived: Counter;
  readonly entriesAcked: Counter;
  readonly entriesRefused: Counter<'reason'>;
  readonly entriesEmitted: Counter;
  readonly entriesDeadLettered: Counter;
  readonly chunksReceived: Counter;
  readonly chunksAcked: Counter;
  readonly chunksRefused: Counter<'reason'>;
  readonly bytesReceived: Counter;
  readonly spoolBytes: Gauge;
  readonly spoolPendingEntries: Gauge;
  readonly spoolRetainedBytes: Gauge;
  readonly spoolOldestRetainedTimestamp: Gauge;
  readonly emitRetries: Counter;
  readonly batchesEmitted: Counter<'cause'>;
  readonly notificationsSent: Counter<'action' | 'outcome'>;
  readonly emitDuration: Histogram;
  readonly streamsOpen: Gauge;
  /** Chunk bytes received and not yet acknowledged, all streams (AGGREGATOR_MAX_INFLIGHT_BYTES bounds it). */
  readonly inflightBytes: Gauge;
  /** Streams whose reading is paused by the in-flight budget. */
  readonly streamsPaused: Gauge;
  /** Lines over AGGREGATOR_MAX_LINE_BYTES, set aside in the dead-letter file (the rest of their chunk is accepted). */
  readonly entriesOversized: Counter;
  /** gRPC messages that could not be decoded (no Chunk reached the service; the stream ended with an error status). */
  readonly messagesUndecodable: Counter<'reason'>;
  /** Where the spool gauges read from at scrape time (set once the spool is open). */
  setSpoolProbe(probe: () => SpoolProbe): void;
}

/** What the spool gauges read at scrape time. */
export interface SpoolProbe {
  readonly bytes: number;
  readonly pendingEntries: number;
  /** Delivered segments kept for replay (AGGREGATOR_SPOOL_RETENTION). */
  readonly retainedBytes: number;
  /** When the oldest retained segment was sealed (ms since the epoch); undefined when none. */
  readonly oldestRetainedMs: number | undefined;
}

export function createAggregatorMetrics(options: { defaultMetrics?: boolean } = {}): AggregatorMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let spoolProbe: (() => SpoolProbe) | undefined;
  const metrics: AggregatorMetrics = {
    setSpoolProbe: (probe) => {
      spoolProbe = probe;
    },
    registry,
    entriesReceived: new Counter({
      name: 'mega_aggregator_entries_received_total',
      help: 'Entries in chunks received from collectors (before validation)',
      registers,
    }),
    entriesAcked: new Counter({
      name: 'mega_aggregator_entries_acked_total',
      help: 'Entries durable in the spool and acknowledged',
      registers,
    }),
    entriesRefused: new Counter({
      name: 'mega_aggregator_entries_refused_total',
      help: 'Entries in chunks answered with a refusal, by reason',
      labelNames: ['reason'],
      registers,
    }),
    entriesEmitted: new Counter({
      name: 'mega_aggregator_entries_emitted_total',
      help: 'Entries confirmed by the emitter',
      registers,
    }),
    entriesDeadLettered: new Counter({
      name: 'mega_aggregator_entries_dead_lettered_total',
      help: 'Entries the emitter can never accept, moved to the dead-letter file',
      registers,
    }),
    chunksReceived: new Counter({
      name: 'mega_aggregator_chunks_received_total',
      help: 'Chunks received from collectors',
      registers,
    }),
    chunksAcked: new Counter({
      name: 'mega_aggregator_chunks_acked_total',
      help: 'Chunks acknowledged OK (durable in the spool)',
      registers,
    }),
    chunksRefused: new Counter({
      name: 'mega_aggregator_chunks_refused_total',
      help: 'Chunks answered with a refusal, by reason',
      labelNames: ['reason'],
      registers,
    }),
    bytesReceived: new Counter({
      name: 'mega_aggregator_received_bytes_total',
      help: 'Encoded entry bytes received in chunks',
      registers,
    }),
    spoolBytes: new Gauge({
      name: 'mega_aggregator_spool_bytes',
      help: 'Bytes of spool segments on disk',
      registers,
      collect() {
        if (spoolProbe !== undefined) this.set(spoolProbe().bytes);
      },
    }),
    spoolPendingEntries: new Gauge({
      name: 'mega_aggregator_spool_pending_entries',
      help: 'Entries appended to the spool and not yet delivered',
      registers,
      collect() {
        if (spoolProbe !== undefined) this.set(spoolProbe().pendingEntries);
      },
    }),
    spoolRetainedBytes: new Gauge({
      name: 'mega_aggregator_spool_retained_bytes',
      help: 'Bytes of delivered spool segments kept for replay (AGGREGATOR_SPOOL_RETENTION)',
      registers,
      collect() {
        if (spoolProbe !== undefined) this.set(spoolProbe().retainedBytes);
      },
    }),
    spoolOldestRetainedTimestamp: new Gauge({
      name: 'mega_aggregator_spool_oldest_retained_timestamp_seconds',
      help: 'When the oldest retained spool segment was sealed (Unix time; 0 when none is retained)',
      registers,
      collect() {
        if (spoolProbe !== undefined) this.set((spoolProbe().oldestRetainedMs ?? 0) / 1000);
      },
    }),
    emitRetries: new Counter({
      name: 'mega_aggregator_emit_retries_total',
      help: 'Failed emit attempts that will be retried',
      registers,
    }),
    batchesEmitted: new Counter({
      name: 'mega_aggregator_batches_emitted_total',
      help: 'Emits confirmed by the emitter (batches joined into one emit count once), by what cut them (size, time, drain; of the first joined one)',
      labelNames: ['cause'],
      registers,
    }),
    notificationsSent: new Counter({
      name: 'mega_aggregator_notifications_total',
      help: 'PagerDuty notifications, by action (trigger, resolve) and outcome',
      labelNames: ['action', 'outcome'],
      registers,
    }),
    emitDuration: new Histogram({
      name: 'mega_aggregator_emit_duration_seconds',
      help: 'Time from handing a batch to the emitter to its final result (retries included)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    streamsOpen: new Gauge({
      name: 'mega_aggregator_streams_open',
      help: 'Collector streams currently open',
      registers,
    }),
    inflightBytes: new Gauge({
      name: 'mega_aggregator_inflight_bytes',
      help: 'Chunk bytes received from collectors and not yet acknowledged, all streams together (bounded by AGGREGATOR_MAX_INFLIGHT_BYTES)',
      registers,
    }),
    streamsPaused: new Gauge({
      name: 'mega_aggregator_streams_paused',
      help: 'Collector streams waiting to read their next chunk until AGGREGATOR_MAX_INFLIGHT_BYTES (or their share of it) has room',
      registers,
    }),
    entriesOversized: new Counter({
      name: 'mega_aggregator_entries_oversized_total',
      help: 'Entries longer than AGGREGATOR_MAX_LINE_BYTES, written to the dead-letter file instead of the spool',
      registers,
    }),
    messagesUndecodable: ((): Counter<'reason'> => {
      const c = new Counter({
        name: 'mega_aggregator_messages_undecodable_total',
        help: 'gRPC messages refused before decoding, by reason (compressed flag without grpc-encoding, not a Chunk); the stream ends with an error status',
        labelNames: ['reason'],
        registers,
      });
      for (const reason of UNDECODABLE_REASONS) c.inc({ reason }, 0);
      return c;
    })(),
  };
  for (const reason of REFUSE_REASONS) {
    metrics.entriesRefused.inc({ reason }, 0);
    metrics.chunksRefused.inc({ reason }, 0);
  }
  for (const cause of BATCH_CAUSES) metrics.batchesEmitted.inc({ cause }, 0);
  for (const action of NOTIFY_ACTIONS) for (const outcome of NOTIFY_OUTCOMES) metrics.notificationsSent.inc({ action, outcome }, 0);
  return metrics;
}

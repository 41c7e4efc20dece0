import type { AggregatorConfig } from '../config/aggregator-config.js';
import { Batcher } from '../batcher/batcher.js';
import type { BatchEvent } from '../batcher/batcher.js';
import { errorMessage } from '../errors.js';
import { createEmitter } from '../emitters/emitter-registry.js';
import type { Emitter } from '../emitters/emitter.js';
import { LogOnlyNotifier } from '../emitters/notifier.js';
import type { Notifier } from '../emitters/notifier.js';
import { PagerDutyNotifier } from '../emitters/pagerduty-notifier.js';
import { RetryingEmitter } from '../emitters/retrying-emitter.js';
import { appendDeadLetters } from '../spool/dead-letters.js';
import { Spool } from '../spool/spool.js';
import { createAggregatorMetrics } from '../telemetry/aggregator-metrics.js';
import type { AggregatorMetrics } from '../telemetry/aggregator-metrics.js';
import { startTelemetryServer } from '../telemetry/http-server.js';
import { RateLimitedLog } from '../telemetry/rate-limited-log.js';
import { createTlsHandshakeFailures } from '../telemetry/tls-metrics.js';
import type { Logger } from '../telemetry/logger.js';
import type { Clock, Random } from '../util/clock.js';
import { sleep, systemClock, systemRandom } from '../util/clock.js';
import type { HandshakeFailure } from './grpc-listener.js';
import { startGrpcServer } from './grpc-server.js';
import { prepareDirectory } from '../config/directory.js';
import { namingSetting } from '../config/startup-errors.js';
import { IngestService } from './ingest-service.js';
import { AcceptedOffsets, DEFAULT_ACCEPTED_MAX_FILES } from './accepted-offsets.js';
import { createDedupeMetrics } from '../telemetry/dedupe-metrics.js';

export interface AggregatorDeps {
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly random?: Random;
}

export interface RunningAggregator {
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly metrics: AggregatorMetrics;
  /**
   * Graceful stop: refuse new chunks, finish in-flight acks, stop the gRPC server, emit what is
   * buffered within the deadline (the rest stays in the spool), close emitter, notifier and spool.
   */
  shutdown(deadlineMs: number): Promise<void>;
  /** SIGHUP: the emitter lets go of its output and opens it again (file emitter; others ignore it). */
  reopenOutput(): Promise<void>;
}

/** The notifier for the configuration: PagerDuty when configured, else the log. */
function createNotifier(config: AggregatorConfig, emitterName: string, metrics: AggregatorMetrics, deps: AggregatorDeps): Notifier {
  const log = deps.logger.child({ component: 'notify' });
  if (config.notify === null) {
    return new LogOnlyNotifier((level, msg, error) => log[level]({ err: error?.message }, msg));
  }
  return new PagerDutyNotifier({
    config: config.notify,
    emitterName,
    logger: log,
    clock: deps.clock,
    random: deps.random,
    retry: { initialDelayMs: Math.min(1000, config.emitRetryMaxDelayMs), maxDelayMs: Math.max(1000, config.emitRetryMaxDelayMs) },
    onNotification: (action, outcome) => metrics.notificationsSent.inc({ action, outcome }),
  });
}

function recordBatch(metrics: AggregatorMetrics, event: BatchEvent): void {
  const { batch, result } = event;
  metrics.emitDuration.observe(event.durationMs / 1000);
  if (result.kind === 'ok') {
    metrics.entriesEmitted.inc(batch.count);
    metrics.batchesEmitted.inc({ cause: event.cause });
  } else if (result.kind === 'fatal') {
    metrics.entriesEmitted.inc(batch.count - result.rejected.length);
    metrics.entriesDeadLettered.inc(result.rejected.length);
    metrics.batchesEmitted.inc({ cause: event.cause });
  }
}

export async function startAggregator(config: AggregatorConfig, deps: AggregatorDeps): Promise<RunningAggregator> {
  const { logger } = deps;
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? systemRandom;
  const metrics = createAggregatorMetrics();
  const cleanup: Array<() => Promise<void>> = [];
  const undo = async (): Promise<void> => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  };

  try {
    const spool = await namingSetting('AGGREGATOR_SPOOL_DIR', async () => {
      await prepareDirectory(config.spoolDir);
      return Spool.open({
        dir: config.spoolDir,
        maxBytes: config.spoolMaxBytes,
        segmentBytes: config.spoolSegmentBytes,
        ...(config.spoolMinFreeBytes === undefined ? {} : { minFreeBytes: config.spoolMinFreeBytes }),
        ...(config.spoolRetention === undefined ? {} : { retention: config.spoolRetention }),
        logger: logger.child({ component: 'spool' }),
        clock,
      });
    });
    cleanup.push(() => spool.close());
    metrics.setSpoolProbe(() => {
      const s = spool.stats();
      return { bytes: s.bytes, pendingEntries: s.pendingEntries, retainedBytes: s.retainedBytes, oldestRetainedMs: s.oldestRetainedMs };
    });

    const inner: Emitter = await createEmitter(config.emitter, { clock, random, logger, registry: metrics.registry, commitDir: config.spoolDir });
    const notifier = createNotifier(config, inner.name, metrics, deps);
    const emitter = new RetryingEmitter({
      inner,
      policy: { initialDelayMs: config.emitRetryInitialDelayMs, maxDelayMs: config.emitRetryMaxDelayMs },
      maxRetries: config.emitMaxRetries,
      notifier,
      clock,
      random,
      logger: logger.child({ component: 'emit' }),
      onRetry: () => metrics.emitRetries.inc(),
    });
    cleanup.push(() => notifier.close());
    cleanup.push(() => emitter.close());
    await emitter.start();

    const batcher = new Batcher({
      spool,
      emitter,
      maxBatchSize: config.maxBatchSize,
      maxBatchBytes: config.maxBatchBytes,
      maxDelayMs: config.minimumPublishFrequencyMs,
      clock,
      logger: logger.child({ component: 'batcher' }),
      onBatch: (event) => recordBatch(metrics, event),
    });

    // Exactly-once: the offsets already in the spool, so that chunks resent after a crash of either
    // side are acknowledged without being appended again.
    const dedupeMetrics = createDedupeMetrics(metrics.registry);
    const accepted = await AcceptedOffsets.rebuild(config.spoolDir, DEFAULT_ACCEPTED_MAX_FILES, () => dedupeMetrics.evicted());
    const ingest = new IngestService({
      accepted,
      dedupeMetrics,
      sink: spool,
      limits: config.limits,
      deadLetters: {
        add: async (data, entryCount, reason) => {
          await appendDeadLetters(config.spoolDir, [{ data, entryCount, reason, timeMs: clock.now() }]);
        },
      },
      maxSpoolBytes: config.spoolMaxBytes,
      maxInflightBytes: config.maxInflightBytes,
      metrics,
      logger: logger.child({ component: 'ingest' }),
      clock,
    });
    const handshakeFailures = createTlsHandshakeFailures(metrics.registry);
    const tlsLog = logger.child({ component: 'tls' });
    const handshakeLog = new RateLimitedLog<HandshakeFailure>({
      clock,
      intervalMs: 10_000,
      burst: 5,
      write: (failure) => tlsLog.warn(failure, 'TLS handshake refused'),
    });
    const grpc = await namingSetting('AGGREGATOR_LISTEN_ADDRESS', () =>
      startGrpcServer({
        address: config.listenAddress,
        tls: config.tls,
        ingest,
        maxChunkBytes: config.limits.maxChunkBytes,
        metrics,
        onHandshakeFailure: (failure) => {
          handshakeFailures.inc({ reason: failure.reason });
          handshakeLog.log(failure);
        },
        onDefaultHttp2Settings: () => logger.warn({}, 'cannot reach grpc-js\'s HTTP/2 servers to widen their flow-control windows; ingest runs with HTTP/2\'s 64 KiB defaults (slower, still correct)'),
      }),
    );
    cleanup.push(() => grpc.shutdown(0));

    let shuttingDown = false;
    const telemetry = await namingSetting('AGGREGATOR_METRICS_ADDRESS', () =>
      startTelemetryServer(config.metricsAddress, metrics.registry, {
        healthy: () => true,
        ready: () => (shuttingDown ? { ok: false, reason: 'shutting down' } : { ok: true }),
      }),
    );
    cleanup.push(() => telemetry.close());
    batcher.start();

    let stopping: Promise<void> | undefined;
    const shutdown = async (deadlineMs: number): Promise<void> => {
      shuttingDown = true;
      const started = clock.now();
      const left = (): number => Math.max(0, deadlineMs - (clock.now() - started));
      logger.info({ deadlineMs }, 'shutting down: finishing in-flight acks');
      await ingest.drain(left());
      await grpc.shutdown(Math.min(1000, left()));
      logger.info('gRPC server stopped; emitting buffered batches');
      await batcher.stop(left());
      // An emitter's close may wait on its peer (Aeron drains to a subscriber that may be stuck):
      // bound it by what is left of the deadline, with a short grace if the batcher used it all.
      const graceOver = new AbortController();
      const closed = await Promise.race([
        emitter.close().then(
          () => true,
          (err: unknown) => {
            logger.error({ err: errorMessage(err) }, 'emitter close failed');
            return true;
          },
        ),
        sleep(clock, Math.max(left(), 1000), graceOver.signal).then(
          () => false,
          () => true,
        ),
      ]);
      graceOver.abort();
      if (!closed) logger.warn('the emitter did not finish closing before the shutdown deadline; exiting without it');
      await notifier.close(Math.min(2000, left()));
      await spool.close();
      await telemetry.close();
      const s = batcher.stats();
      logger.info({ batches: s.batches, entries: s.entries, pendingInSpool: s.pending }, 'stopped');
    };

    return {
      grpcPort: grpc.port,
      metricsPort: telemetry.port,
      metrics,
      shutdown: (deadlineMs) => (stopping ??= shutdown(deadlineMs)),
      reopenOutput: () => emitter.reopen(),
    };
  } catch (err) {
    await undo();
    throw err;
  }
}

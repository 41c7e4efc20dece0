import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Collector } from '../../src/collector/collector.js';
import { loadCollectorConfig } from '../../src/config/collector-config.js';
import { createCollectorMetrics } from '../../src/telemetry/collector-metrics.js';
import type { CollectorMetrics } from '../../src/telemetry/collector-metrics.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { systemClock, systemRandom } from '../../src/util/clock.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import type { Entry } from '../../src/wire/entry-batch.js';
import { ScriptedIngestServer } from './collector-ingest-server.js';
import { tryWaitFor } from './wait-for.js';

/**
 * A real Collector (in this process, real files, real chokidar, the system clock) shipping over real
 * gRPC to a ScriptedIngestServer on 127.0.0.1, for scenarios that need the whole wiring but are too
 * narrow or too slow to stage through a child process and the aggregator.
 */
export class CollectorHarness {
  readonly dir = mkdtempSync(join(tmpdir(), 'mc-harness-'));
  readonly logs = join(this.dir, 'logs');
  readonly state = join(this.dir, 'state');
  readonly server = new ScriptedIngestServer();
  collector: Collector | undefined;
  metrics: CollectorMetrics | undefined;

  async startServer(): Promise<void> {
    await this.server.start();
  }

  /** Starts a collector on `${logs}/*.log` with fast timers; `env` overrides any variable. */
  async startCollector(env: Record<string, string> = {}): Promise<Collector> {
    const config = loadCollectorConfig({
      COLLECTOR_REMOTE_ADDRESS: `127.0.0.1:${this.server.port}`,
      COLLECTOR_FILES: join(this.logs, '*.log'),
      COLLECTOR_STATE_DIR: this.state,
      COLLECTOR_ID: 'harness',
      COLLECTOR_BUFFER_TIMEOUT: '20ms',
      COLLECTOR_POLL_INTERVAL: '20ms',
      COLLECTOR_ROTATE_WAIT: '100ms',
      COLLECTOR_RESCAN_INTERVAL: '100ms',
      COLLECTOR_CHECKPOINT_INTERVAL: '50ms',
      COLLECTOR_IDLE_FLUSH: '200ms',
      COLLECTOR_RETRY_INITIAL_DELAY: '20ms',
      COLLECTOR_RETRY_MAX_DELAY: '100ms',
      LOG_LEVEL: 'silent',
      ...env,
    });
    this.metrics = createCollectorMetrics({ defaultMetrics: false });
    this.collector = new Collector({ config, clock: systemClock, random: systemRandom, logger: silentLogger(), metrics: this.metrics, hostname: 'test-host' });
    await this.collector.start();
    return this.collector;
  }

  async stopCollector(): Promise<void> {
    await this.collector?.stop(2000);
    this.collector = undefined;
  }

  /** Every entry the server received (acknowledged chunks and any resent ones). */
  entries(): Entry[] {
    const out: Entry[] = [];
    for (const c of this.server.received) decodeEntries(c.entries, out);
    return out;
  }

  lines(): string[] {
    return this.entries().map((e) => e.line.toString());
  }

  async cleanup(): Promise<void> {
    await this.stopCollector();
    this.server.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Polls `check` until it returns true or `timeoutMs` passes; returns whether it did. Kept for the
 * in-process collector tests; new tests use `waitFor` (test/helpers/wait-for.ts) directly.
 */
export function eventually(check: () => boolean, timeoutMs = 5000): Promise<boolean> {
  return tryWaitFor(check, { timeoutMs, intervalMs: 20, what: 'a collector condition' });
}

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAggregator } from './aggregator-process.js';
import type { AggregatorProcess } from './aggregator-process.js';
import { checkDelivery, readDelivered } from './collector-delivery.js';
import type { Delivered, DeliveryReport } from './collector-delivery.js';
import { LogWriter } from './collector-log-writer.js';
import { FAST_COLLECTOR_ENV, startCollector } from './collector-process.js';
import type { CollectorProcess } from './collector-process.js';
import { restartablePort } from './free-port.js';
import { tryWaitFor } from './wait-for.js';

/**
 * A fleet for the scale-out tests: real aggregator processes (file emitter, each its own spool and
 * output file) and real collector processes (each its own log directory, state and id), writers
 * appending uniquely numbered lines, and the check of the union of the outputs against every line
 * written.
 */
export interface FleetAggregator {
  /** "host:port" it listens on (kept across restarts). */
  readonly listen: string;
  readonly out: string;
  readonly env: Record<string, string>;
  process: AggregatorProcess | undefined;
}

export interface FleetCollector {
  readonly id: string;
  /** The writer's stream: lines "<stream> <seq> ...". */
  readonly stream: string;
  readonly writer: LogWriter;
  readonly env: Record<string, string>;
  process: CollectorProcess | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Fleet {
  readonly dir = mkdtempSync(join(tmpdir(), 'mc-scale-out-'));
  readonly aggregators: FleetAggregator[] = [];
  readonly collectors: FleetCollector[] = [];
  private writing: Promise<void> | undefined;
  private running = false;
  private made = { aggregators: 0, collectors: 0 };
  /** Starts in progress: close() waits for them, so a start that failed beside them leaves no process behind. */
  private readonly starting = new Set<Promise<unknown>>();

  private track<T>(start: Promise<T>): Promise<T> {
    this.starting.add(start);
    void start.catch(() => undefined).finally(() => this.starting.delete(start));
    return start;
  }

  /** Starts one aggregator listening on `host` (at `port`, or one `restart` can come back to). */
  async addAggregator(host: string, port?: number): Promise<FleetAggregator> {
    port ??= await restartablePort('tcp', host);
    const n = ++this.made.aggregators;
    const out = join(this.dir, `out-${n}.jsonl`);
    const env = {
      AGGREGATOR_SPOOL_DIR: join(this.dir, `spool-${n}`),
      AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
      AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
      AGGREGATOR_LISTEN_ADDRESS: `${host}:${port}`,
    };
    const process = await this.track(startAggregator({ env, timeoutMs: 60_000 }));
    const a: FleetAggregator = { listen: `${host}:${process.grpcPort}`, out, env: { ...env, AGGREGATOR_LISTEN_ADDRESS: `${host}:${process.grpcPort}` }, process };
    this.aggregators.push(a);
    return a;
  }

  async restart(a: FleetAggregator): Promise<void> {
    a.process = await this.track(startAggregator({ env: a.env, timeoutMs: 60_000 }));
  }

  async addCollector(remote: string, extra: Record<string, string> = {}): Promise<FleetCollector> {
    const n = ++this.made.collectors;
    const logs = join(this.dir, `logs-${n}`);
    mkdirSync(logs);
    const id = `fleet-${n}`;
    const env = {
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_ID: id,
      COLLECTOR_REMOTE_ADDRESS: remote,
      COLLECTOR_FILES: join(logs, '*.log'),
      COLLECTOR_STATE_DIR: join(this.dir, `state-${n}`),
      COLLECTOR_BUFFER_MAX_BYTES: '16KiB',
      COLLECTOR_RESOLVE_INTERVAL: '1s',
      ...extra,
    };
    const c: FleetCollector = { id, stream: `c${n}`, writer: new LogWriter(logs, 'p'.repeat(40)), env, process: undefined };
    c.writer.append(c.stream, 5);
    c.process = await this.track(startCollector(env, [], 60_000));
    this.collectors.push(c);
    return c;
  }

  /** Every collector's writer appends `linesPerTick` lines every `tickMs` until stopWriting. */
  startWriting(linesPerTick = 5, tickMs = 20): void {
    this.running = true;
    this.writing = (async () => {
      while (this.running) {
        for (const c of this.collectors) c.writer.append(c.stream, linesPerTick);
        await sleep(tickMs);
      }
    })();
  }

  async stopWriting(): Promise<void> {
    this.running = false;
    await this.writing;
  }

  get written(): string[] {
    return this.collectors.flatMap((c) => c.writer.written);
  }

  delivered(a: FleetAggregator): Delivered[] {
    return readDelivered(a.out);
  }

  /** Waits until the union of the outputs holds every line written (or `timeoutMs`), then checks it. */
  async settle(timeoutMs = 30_000): Promise<DeliveryReport> {
    const written = this.written;
    await tryWaitFor(() => new Set(this.aggregators.flatMap((a) => this.delivered(a).map((d) => d.line))).size >= written.length, {
      timeoutMs,
      what: 'every line written in the union of the outputs',
      intervalMs: 200,
    });
    await sleep(300);
    return checkDelivery(written, this.aggregators.flatMap((a) => this.delivered(a)));
  }

  /** The aggregator address a collector's stream goes to now (mega_collector_aggregator). */
  async connectedTo(c: FleetCollector): Promise<string | undefined> {
    const text = (await c.process?.metricsText()) ?? '';
    return /^mega_collector_aggregator\{address="([^"]+)"\} 1$/m.exec(text)?.[1];
  }

  async close(): Promise<void> {
    await this.stopWriting();
    await Promise.allSettled([...this.starting]);
    await Promise.all(this.collectors.map((c) => c.process?.kill()));
    await Promise.all(this.aggregators.map((a) => a.process?.kill()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

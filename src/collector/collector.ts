import { close as closeCb, fstatSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { CollectorConfig } from '../config/collector-config.js';
import { ErrorCode, McError } from '../errors.js';
import type { CollectorMetrics } from '../telemetry/collector-metrics.js';
import type { Clock, Random } from '../util/clock.js';
import { encodeBatchHeader } from '../wire/entry-batch.js';
import { CONSERVATIVE_LIMITS } from '../wire/ingest-limits.js';
import type { IngestLimits } from '../wire/ingest-limits.js';
import { dnsServerResolver } from './aggregator-resolver.js';
import { CheckpointStore } from './checkpoint-store.js';
import { CheckpointWriter } from './checkpoint-writer.js';
import { ChunkBuilder } from './chunk-builder.js';
import type { SealedChunk } from './chunk-builder.js';
import { ChunkDrain, ChunkQueue } from './chunk-queue.js';
import { loadOrCreateCollectorId } from './collector-id.js';
import { Discovery } from './discovery.js';
import { FileOpener } from './file-opener.js';
import { FileRegistry } from './file-registry.js';
import { ReadLoop } from './read-loop.js';
import { ShipClient } from './ship-client.js';
import type { FileTailer } from './tail-file.js';

const closeAsync = promisify(closeCb);

/**
 * Room kept in a chunk for what surrounds one line: a run head (a path, at most PATH_MAX = 4096
 * bytes, and a file id) and the line's own fields. A line piece is at most a chunk minus the batch
 * header minus this, so one piece alone always fits in an empty chunk.
 */
const LINE_FRAME_RESERVE = 4096 + 256 + 32;

export interface CollectorDeps {
  readonly config: CollectorConfig;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly metrics: CollectorMetrics;
  readonly hostname: string;
  /** Called when shipping gave up for good (COLLECTOR_RETRY_MAX_TIMES). */
  readonly onFatal?: (err: McError) => void;
}

/**
 * The collector's wiring: discovery reports files to the opener (file-opener.ts), which decides their
 * identity and makes tailers; the read loop (read-loop.ts) steps the tailers into the chunk builder;
 * sealed chunks go through a bounded queue (chunk-queue.ts) to the ship client; acknowledgements move
 * the per-file cursors, which the checkpoint writer (checkpoint-writer.ts) persists. Reading pauses
 * while the bytes read and not acknowledged reach COLLECTOR_MAX_INFLIGHT_BYTES.
 */
export class Collector {
  private readonly config: CollectorConfig;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly metrics: CollectorMetrics;
  private readonly tailers = new Map<string, FileTailer>();
  private readonly registry: FileRegistry;
  private readonly opener: FileOpener;
  private readonly store: CheckpointStore;
  private readonly checkpoints: CheckpointWriter;
  private readonly loop: ReadLoop;
  private readonly queue: ChunkQueue;
  private builder: ChunkBuilder | undefined;
  private drain: ChunkDrain | undefined;
  private ship: ShipClient | undefined;
  private discovery: Discovery | undefined;
  private running = false;
  private forceBeginning = false;
  /** The aggregator's limits (CONSERVATIVE_LIMITS until it advertises them). */
  private limits: IngestLimits = CONSERVATIVE_LIMITS;
  private header: Buffer = Buffer.alloc(0);
  private tags: ReadonlyArray<{ key: string; value: string }> = [];
  collectorId = '';

  constructor(private readonly deps: CollectorDeps) {
    const config = (this.config = deps.config);
    this.clock = deps.clock;
    this.log = deps.logger;
    this.metrics = deps.metrics;
    this.registry = new FileRegistry(() => deps.clock.now());
    this.store = new CheckpointStore(config.stateDir);
    this.queue = new ChunkQueue(config.maxInflightBytes);
    this.checkpoints = new CheckpointWriter({
      store: this.store,
      clock: this.clock,
      log: this.log,
      metrics: this.metrics,
      intervalMs: config.checkpointIntervalMs,
      active: () => [...this.tailers.values()].map((t) => t.cursor),
      retired: () => this.registry.retiredCursors,
    });
    this.opener = new FileOpener({
      config,
      clock: this.clock,
      log: this.log,
      metrics: this.metrics,
      registry: this.registry,
      tailers: this.tailers,
      forceBeginning: () => this.forceBeginning,
      rescan: () => void this.discovery?.rescan(),
      checkpoint: async (extra) => {
        this.checkpoints.markDirty();
        if (extra !== undefined) await this.checkpoints.save(extra);
      },
      wake: () => this.loop.wake(),
      maxLineBytes: () => this.maxLineBytes,
      closed: (cursor) => {
        if (cursor.settled) this.forgetPath(cursor.path);
      },
    });
    this.loop = new ReadLoop({
      clock: this.clock,
      log: this.log,
      metrics: this.metrics,
      pollIntervalMs: config.pollIntervalMs,
      pollMaxIntervalMs: config.pollMaxIntervalMs,
      maxInflightBytes: config.maxInflightBytes,
      maxLineBytes: config.maxLineBytes,
      tailers: this.tailers,
      inflightBytes: () => this.inflightBytes,
      paused: () => this.paused,
      truncated: (tailer) => this.opener.truncated(tailer),
      finish: (key, tailer) => this.opener.finish(key, tailer),
    });
  }

  get inflightBytes(): number {
    return (this.builder?.byteLength ?? 0) + this.queue.heldBytes + (this.ship?.unackedBytes ?? 0);
  }

  get paused(): boolean {
    return this.inflightBytes >= this.config.maxInflightBytes || this.queue.full;
  }

  async start(): Promise<void> {
    const cfg = this.config;
    this.collectorId = cfg.collectorId ?? (await loadOrCreateCollectorId(cfg.stateDir));
    const loaded = await this.store.load();
    if (loaded.problem !== undefined) {
      // Starting every file from the beginning re-sends what was acknowledged (duplicates) but loses
      // nothing, whatever COLLECTOR_START_AT says. Also when the older copy was usable: a file it does
      // not know may have been in the lost one, with lines written since it was last read.
      this.forceBeginning = true;
      this.metrics.checkpointErrors.inc();
      this.log.error({ problem: loaded.problem, usingBackup: loaded.source === 'prev' }, 'checkpoint file unusable; recovering (files may be re-sent, none skipped)');
    }
    this.registry.restore(loaded.records);
    const tags = [...(cfg.tags ?? []), { key: 'host', value: this.deps.hostname }];
    const header = encodeBatchHeader(this.collectorId, tags);
    this.header = header;
    this.tags = tags;
    this.builder = new ChunkBuilder(
      header,
      {
        maxBytes: this.chunkCap,
        timeoutMs: cfg.bufferTimeoutMs,
        maxEntries: this.limits.maxEntriesPerChunk,
        // Every buffer of a chunk the in-flight bound lets through, plus the open one's successor.
        spareBuffers: Math.ceil(cfg.maxInflightBytes / this.chunkCap) + 1,
      },
      this.clock,
      (chunk) => this.queue.push(chunk),
    );
    this.ship = new ShipClient({
      addresses: cfg.remoteAddress,
      key: this.collectorId,
      tls: cfg.tls ? { caCertificate: cfg.tlsCaCertificate, key: cfg.tlsKey, certificate: cfg.tlsCertificate } : undefined,
      resolveIntervalMs: cfg.resolveIntervalMs,
      ...(cfg.dnsServers === undefined ? {} : { resolve: dnsServerResolver(cfg.dnsServers) }),
      retry: { initialDelayMs: cfg.retryInitialDelayMs, maxDelayMs: cfg.retryMaxDelayMs, maxTimes: cfg.retryMaxTimes },
      clock: this.clock,
      random: this.deps.random,
      logger: this.log,
      onAcked: (chunk) => this.onAcked(chunk, false),
      onRejected: (chunk) => this.onAcked(chunk, true),
      onFatal: (err) => this.deps.onFatal?.(err),
      onSent: () => this.metrics.chunksSent.inc(),
      onReconnect: (reason) => this.metrics.reconnects.inc({ reason }),
      onFailover: (reason) => this.metrics.failovers.inc({ reason }),
      onLimits: (limits, advertised) => this.applyLimits(limits, advertised),
    });
    this.drain = new ChunkDrain(this.queue, this.ship, queueMicrotask, () => this.loop.notePeak());
    this.metrics.setProbe({
      inflightBytes: () => this.inflightBytes,
      paused: () => this.paused,
      connected: () => this.ship?.connected ?? false,
      aggregator: () => this.ship?.aggregator,
      openFiles: () => this.tailers.size,
      behind: () => {
        // A rotated file still draining and its successor share a path: their lag adds up.
        const byPath = new Map<string, number>();
        for (const t of this.tailers.values()) byPath.set(t.cursor.path, (byPath.get(t.cursor.path) ?? 0) + Math.max(0, this.fileSize(t) - t.cursor.readOffset));
        return byPath;
      },
    });
    this.discovery = new Discovery(cfg.files, { rescanIntervalMs: cfg.rescanIntervalMs, clock: this.clock, logger: this.log }, {
      found: (paths) => this.opener.found(paths, false),
      changed: (path) => this.loop.touch(path),
      scanned: () => this.metrics.discoveryScans.inc(),
    });
    const initial = await this.discovery.start();
    this.opener.found(initial, true);
    await this.opener.idle();
    // Durable before the first read: a file missing from the checkpoints after a crash is then truly
    // one never seen before, and COLLECTOR_START_AT=end may skip its content without losing lines
    // this collector had already started to read.
    this.checkpoints.markDirty();
    await this.checkpoints.save();
    this.ship.start();
    this.running = true;
    this.loop.start(this.builder);
    this.checkpoints.start();
    this.log.info({ collectorId: this.collectorId, files: this.tailers.size, restored: loaded.records.length }, 'collector running');
  }

  /** Largest chunk built: COLLECTOR_BUFFER_MAX_BYTES, or less when the aggregator accepts less. */
  private get chunkCap(): number {
    return Math.min(this.config.bufferMaxBytes, this.limits.maxChunkBytes);
  }

  /**
   * Longest line piece cut: COLLECTOR_MAX_LINE_BYTES, or less when the aggregator accepts less, and
   * always small enough to fit in an empty chunk (longer lines become flagged pieces, never truncated).
   */
  get maxLineBytes(): number {
    const room = this.chunkCap - this.header.length - LINE_FRAME_RESERVE;
    return Math.max(16, Math.min(this.config.maxLineBytes, this.limits.maxLineBytes, room));
  }

  private applyLimits(limits: IngestLimits, advertised: boolean): void {
    this.limits = limits;
    this.builder?.setLimits(this.chunkCap, limits.maxEntriesPerChunk);
    const tagBytes = this.tags.reduce((n, t) => n + Buffer.byteLength(t.key) + Buffer.byteLength(t.value), 0);
    // (An older aggregator that advertises nothing has no tag limits: only advertised ones are checked.)
    if (advertised && (this.tags.length > limits.maxTags || tagBytes > limits.maxTagBytes)) {
      // Every chunk would be refused: stop before sending any (nothing is acknowledged, nothing lost).
      const err = new McError(
        ErrorCode.Config,
        `COLLECTOR_TAGS: ${this.tags.length} tags of ${tagBytes} bytes (host included) exceed the aggregator's limits of ${limits.maxTags} tags and ${limits.maxTagBytes} bytes`,
      );
      this.log.fatal({ err: err.message }, 'tags exceed what the aggregator accepts');
      this.ship?.close();
      this.deps.onFatal?.(err);
    }
  }

  /** The file's size now (a scrape-time fstat: while reading is paused, the tailer does not look). */
  private fileSize(t: FileTailer): number {
    try {
      return fstatSync(t.fd).size;
    } catch {
      return t.knownEnd;
    }
  }

  /**
   * Drops the per-path series of a path nothing is read from or waits for acknowledgements on any
   * more. Paths come and go (dated names, container logs): kept forever, their series would grow
   * the registry, and every scrape, without bound. A path that comes back starts its counters at 0.
   */
  private forgetPath(path: string): void {
    for (const t of this.tailers.values()) if (t.cursor.path === path) return;
    for (const c of this.registry.retiredCursors) if (c.path === path && !c.settled) return;
    const m = this.metrics;
    for (const counter of [m.linesRead, m.bytesRead, m.linesAcked, m.bytesAcked]) counter.remove({ path });
  }

  private onAcked(chunk: SealedChunk, rejected: boolean): void {
    if (rejected) {
      this.metrics.chunksRejected.inc({ reason: 'invalid' });
      this.metrics.linesDropped.inc({ reason: 'invalid' }, chunk.entryCount);
    } else this.metrics.chunksAcked.inc();
    this.builder?.release(chunk);
    for (const range of chunk.ranges) {
      const delta = range.cursor.ack(range);
      if (delta.lines > 0 && !rejected) {
        this.metrics.linesAcked.inc({ path: range.cursor.path }, delta.lines);
        this.metrics.bytesAcked.inc({ path: range.cursor.path }, delta.bytes);
      }
      if (range.cursor.retired && range.cursor.settled) this.forgetPath(range.cursor.path);
    }
    this.checkpoints.markDirty();
    if (!this.paused) this.loop.wake();
  }

  /**
   * Drain: stop reading, send what is read, wait for acknowledgements up to `timeoutMs`, write the
   * checkpoints. Resolves true when everything read was acknowledged.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    if (!this.running && this.ship === undefined) return true;
    this.running = false;
    this.opener.stop();
    await this.loop.stop();
    await this.opener.idle();
    await this.discovery?.close();
    this.checkpoints.stop();
    this.builder?.seal();
    this.drain?.flush();
    const drained = (await this.ship?.waitIdle(timeoutMs)) ?? true;
    this.checkpoints.markDirty();
    await this.checkpoints.save();
    this.ship?.close();
    this.builder?.close();
    for (const t of this.tailers.values()) await closeAsync(t.fd).catch(() => undefined);
    this.tailers.clear();
    this.ship = undefined;
    return drained;
  }
}

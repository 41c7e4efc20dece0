import { close as closeCb, closeSync, fstat as fstatCb, fstatSync, openSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { CollectorConfig } from '../config/collector-config.js';
import { ErrorCode, McError, errorMessage } from '../errors.js';
import type { CollectorMetrics } from '../telemetry/collector-metrics.js';
import type { Clock, Random, TimerHandle } from '../util/clock.js';
import { encodeBatchHeader } from '../wire/entry-batch.js';
import { CONSERVATIVE_LIMITS } from '../wire/ingest-limits.js';
import type { IngestLimits } from '../wire/ingest-limits.js';
import { CheckpointStore } from './checkpoint-store.js';
import { ChunkBuilder } from './chunk-builder.js';
import type { SealedChunk } from './chunk-builder.js';
import { loadOrCreateCollectorId } from './collector-id.js';
import { Discovery } from './discovery.js';
import type { FileCursor } from './file-cursor.js';
import { HASH_WINDOW } from './file-identity.js';
import { FileOpener } from './file-opener.js';
import { FileRegistry } from './file-registry.js';
import { ShipClient } from './ship-client.js';
import type { FileTailer } from './tail-file.js';

const fstatAsync = promisify(fstatCb);
const closeAsync = promisify(closeCb);

/** The read buffer: large reads, and always room for one longest line plus the truncation check. */
const READ_BUFFER_BYTES = 1024 * 1024;
/**
 * The smallest read while the in-flight budget is nearly used up: reads stay efficient, and the
 * overshoot stays far below one read (min(1 MiB, COLLECTOR_MAX_INFLIGHT_BYTES), at least 64 KiB).
 */
const MIN_READ_BYTES = 16 * 1024;

interface PreOpened {
  readonly path: string;
  readonly fd: number;
  /** device:inode of the open file. */
  readonly key: string;
}

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
 * Wires discovery, tailing, chunking, shipping and checkpoints. One pump loop reads one buffer from
 * each file in turn (fair across files) while the unacknowledged bytes stay under
 * COLLECTOR_MAX_INFLIGHT_BYTES; a file found idle is read again after COLLECTOR_POLL_INTERVAL, or
 * at once when a change event names it. Found files are opened the moment they are reported.
 * Acknowledgements move per-file checkpoints, written every COLLECTOR_CHECKPOINT_INTERVAL and at
 * shutdown. (Past 400 lines: the wiring and the pump share the state of the open files; the
 * pieces with logic of their own live in their own files.)
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
  private readonly readBuf: Buffer;
  private builder: ChunkBuilder | undefined;
  private ship: ShipClient | undefined;
  private discovery: Discovery | undefined;
  private running = false;
  private pumpDone: Promise<void> = Promise.resolve();
  private wakeUp: (() => void) | undefined;
  private openChain: Promise<void> = Promise.resolve();
  private checkpointTimer: TimerHandle | undefined;
  private checkpointDirty = false;
  private saving: Promise<void> | undefined;
  private forceBeginning = false;
  /** The aggregator's limits (CONSERVATIVE_LIMITS until it advertises them). */
  private limits: IngestLimits = CONSERVATIVE_LIMITS;
  private header: Buffer = Buffer.alloc(0);
  private tags: ReadonlyArray<{ key: string; value: string }> = [];
  /** device:inode of files opened on discovery and waiting in the open queue. */
  private readonly pendingKeys = new Set<string>();
  /** Most bytes one read may take: one read buffer, never more than the in-flight bound. */
  private readonly readCap: number;
  private inflightPeak = 0;
  /** A file found idle is not read again before this time, unless a change event names its path. */
  private readonly idleUntil = new WeakMap<FileTailer, number>();
  /** Paths named by change events since the last pass. */
  private touched = new Set<string>();
  private stopping = false;
  collectorId = '';

  constructor(private readonly deps: CollectorDeps) {
    this.config = deps.config;
    this.clock = deps.clock;
    this.log = deps.logger;
    this.metrics = deps.metrics;
    this.registry = new FileRegistry(() => deps.clock.now());
    this.store = new CheckpointStore(deps.config.stateDir);
    this.opener = new FileOpener({
      config: this.config,
      clock: this.clock,
      log: this.log,
      metrics: this.metrics,
      registry: this.registry,
      tailers: this.tailers,
      forceBeginning: () => this.forceBeginning,
      enqueueOpen: (paths) => this.enqueueOpen(paths, false),
      enqueue: (task) => {
        this.openChain = this.openChain.then(task).catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'looking for a rotated copy failed'));
      },
      rescan: () => void this.discovery?.rescan(),
      checkpoint: async (extra) => {
        this.checkpointDirty = true;
        if (extra !== undefined) await this.saveCheckpoints(extra);
      },
      wake: () => this.wake(),
      maxLineBytes: () => this.maxLineBytes,
    });
    this.readBuf = Buffer.allocUnsafe(Math.max(READ_BUFFER_BYTES, deps.config.maxLineBytes + HASH_WINDOW + 2));
    this.readCap = Math.min(READ_BUFFER_BYTES, deps.config.maxInflightBytes);
  }

  get inflightBytes(): number {
    return (this.builder?.byteLength ?? 0) + (this.ship?.unackedBytes ?? 0);
  }

  get paused(): boolean {
    return this.inflightBytes >= this.config.maxInflightBytes;
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
      { maxBytes: this.chunkCap, timeoutMs: cfg.bufferTimeoutMs, maxEntries: this.limits.maxEntriesPerChunk },
      this.clock,
      (chunk) => this.onSealed(chunk),
    );
    this.ship = new ShipClient({
      address: cfg.remoteAddress,
      credentials: this.credentials(),
      retry: { initialDelayMs: cfg.retryInitialDelayMs, maxDelayMs: cfg.retryMaxDelayMs, maxTimes: cfg.retryMaxTimes },
      clock: this.clock,
      random: this.deps.random,
      logger: this.log,
      onAcked: (chunk) => this.onAcked(chunk, false),
      onRejected: (chunk) => this.onAcked(chunk, true),
      onFatal: (err) => this.deps.onFatal?.(err),
      onSent: () => this.metrics.chunksSent.inc(),
      onReconnect: () => this.metrics.reconnects.inc(),
      onLimits: (limits, advertised) => this.applyLimits(limits, advertised),
    });
    this.metrics.setProbe({
      inflightBytes: () => this.inflightBytes,
      paused: () => this.paused,
      connected: () => this.ship?.connected ?? false,
      openFiles: () => this.tailers.size,
      behind: () => {
        // A rotated file still draining and its successor share a path: their lag adds up.
        const byPath = new Map<string, number>();
        for (const t of this.tailers.values()) byPath.set(t.cursor.path, (byPath.get(t.cursor.path) ?? 0) + Math.max(0, this.fileSize(t) - t.cursor.readOffset));
        return byPath;
      },
    });
    this.discovery = new Discovery(cfg.files, { rescanIntervalMs: cfg.rescanIntervalMs, clock: this.clock, logger: this.log }, {
      found: (paths) => this.enqueueOpen(paths, false),
      changed: (path) => {
        if (path !== undefined) this.touched.add(path);
        this.wake();
      },
    });
    const initial = await this.discovery.start();
    this.enqueueOpen(initial, true);
    await this.openChain;
    // Durable before the first read: a file missing from the checkpoints after a crash is then truly
    // one never seen before, and COLLECTOR_START_AT=end may skip its content without losing lines
    // this collector had already started to read.
    this.checkpointDirty = true;
    await this.saveCheckpoints();
    this.ship.start();
    this.running = true;
    this.pumpDone = this.pump().catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'tailing loop failed'));
    this.scheduleCheckpoint();
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

  private credentials(): grpc.ChannelCredentials {
    const cfg = this.config;
    if (!cfg.tls) return grpc.credentials.createInsecure();
    return grpc.credentials.createSsl(cfg.tlsCaCertificate ?? null, cfg.tlsKey ?? null, cfg.tlsCertificate ?? null);
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        this.clock.clearTimeout(timer);
        resolve();
      };
    });
  }

  private async pump(): Promise<void> {
    const builder = this.builder as ChunkBuilder;
    while (this.running) {
      let progressed = false;
      // While one busy file always has data the loop does not sleep: without the idle times, every
      // idle file (hundreds of deleted ones draining, with files churning) was read and stat'ed on
      // every pass, which starved the event loop that discovery needs.
      const now = this.clock.now();
      const touched = this.touched;
      this.touched = new Set();
      for (const [key, tailer] of [...this.tailers]) {
        if (!this.running || this.paused) break;
        if ((this.idleUntil.get(tailer) ?? 0) > now && !touched.has(tailer.path)) continue;
        let result;
        try {
          result = await tailer.step(builder, this.readBuf, this.readLimit());
        } catch (err) {
          this.log.error({ path: tailer.path, err: errorMessage(err) }, 'read failed; closing the file (its checkpoint is kept)');
          await this.finish(key, tailer);
          continue;
        }
        if (this.log.isLevelEnabled('trace')) this.log.trace({ path: tailer.path, fileId: tailer.cursor.fileId, result, readOffset: tailer.cursor.readOffset, lines: tailer.stepLines, state: tailer.state }, 'step');
        if (tailer.stepLines > 0) {
          this.metrics.linesRead.inc({ path: tailer.cursor.path }, tailer.stepLines);
          this.metrics.bytesRead.inc({ path: tailer.cursor.path }, tailer.stepBytes);
        }
        if (tailer.stepSplit > 0) this.metrics.linesSplit.inc(tailer.stepSplit);
        this.notePeak();
        if (result === 'idle') this.idleUntil.set(tailer, now + this.config.pollIntervalMs);
        else this.idleUntil.delete(tailer);
        if (result === 'data') progressed = true;
        else if (result === 'truncated') {
          this.onTruncated(tailer);
          progressed = true;
        } else if (result === 'finished') await this.finish(key, tailer);

      }
      if (!progressed && !this.paused) {
        // Every file is read to its end: waiting for COLLECTOR_BUFFER_TIMEOUT would only add latency,
        // since nothing more is there to fill the chunk. Under load, chunks still fill to
        // COLLECTOR_BUFFER_MAX_BYTES because a pass always finds more to read.
        builder.seal();
      }
      if (this.paused) await this.checkPaused();
      if (!progressed || this.paused) await this.sleep(this.config.pollIntervalMs);
    }
  }

  /**
   * How much the next read may take: what is left of the in-flight budget (at least MIN_READ_BYTES,
   * at most one read buffer). The budget is checked before each read, so it holds to within one
   * read; a line longer than the limit is still read whole (the tailer widens the read for it).
   */
  private readLimit(): number {
    return Math.min(this.readCap, Math.max(MIN_READ_BYTES, this.config.maxInflightBytes - this.inflightBytes));
  }

  private notePeak(): void {
    const now = this.inflightBytes;
    if (now <= this.inflightPeak) return;
    this.inflightPeak = now;
    this.metrics.inflightPeakBytes.set(now);
  }

  private onTruncated(tailer: FileTailer): void {
    this.opener.truncated(tailer);
  }

  /**
   * While reading is paused, the truncation checks still run each poll (size, first bytes, bytes
   * before the offset), so a truncation is seen, and its rotated copy found, while it happens.
   */
  private async checkPaused(): Promise<void> {
    for (const tailer of [...this.tailers.values()]) {
      if (!this.running) return;
      const result = await tailer.check().catch(() => 'ok' as const);
      if (result === 'truncated') this.onTruncated(tailer);
    }
  }

  private async finish(key: string, tailer: FileTailer): Promise<void> {
    this.tailers.delete(key);
    // No links left: closing frees the inode, and the next file created may get it (ext4 and tmpfs
    // reuse freed inodes at once), perhaps with the same first bytes (a header, a short first line).
    // Resuming that file at this cursor's offset would skip its beginning.
    const links = await fstatAsync(tailer.fd).then((s) => s.nlink, () => 1);
    if (links === 0) tailer.cursor.gone = true;
    this.registry.retire(tailer.cursor);
    this.checkpointDirty = true;
    this.log.info({ path: tailer.path, offset: tailer.cursor.readOffset }, 'finished a rotated-away or deleted file');
    await closeAsync(tailer.fd).catch(() => undefined);
    if (tailer.cursor.settled) this.forgetPath(tailer.cursor.path);
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

  private enqueueOpen(paths: readonly string[], initial: boolean): void {
    if (this.stopping) return;
    const fresh: PreOpened[] = [];
    for (const path of paths) {
      const opened = this.preopen(path, initial);
      if (opened !== undefined) fresh.push(opened);
    }
    if (fresh.length === 0) return;
    this.openChain = this.openChain.then(async () => {
      for (const { path, fd, key } of fresh) {
        this.pendingKeys.delete(key);
        try {
          await this.openPath(path, initial, fd);
        } catch (err) {
          this.log.warn({ path, err: errorMessage(err) }, 'cannot open file; will retry on the next rescan');
        }
      }
    });
  }

  /**
   * Opens a found file at once, before deciding anything about it: an open descriptor keeps a file
   * readable after it is deleted, so a file that lives a few milliseconds is still read whole.
   * Synchronous on purpose: stat, open and fstat take microseconds on a local disk, and through the
   * thread pool they would queue behind reads and checkpoint fsyncs (under load, for seconds). Nothing
   * is opened for a file already tailed under this path or already waiting in the queue (change
   * events come per write).
   */
  private preopen(path: string, initial: boolean): PreOpened | undefined {
    let st;
    try {
      st = statSync(path);
    } catch {
      return undefined; // gone already, or a dangling link (discovery watches for its target)
    }
    if (!st.isFile() || this.isKnown(`${st.dev}:${st.ino}`, path)) return undefined;
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      this.log.warn({ path, err: errorMessage(err) }, 'cannot open file; will retry on the next rescan');
      return undefined;
    }
    let key: string;
    try {
      const fst = fstatSync(fd);
      key = `${fst.dev}:${fst.ino}`;
      // Replaced between the stat and the open: judge what was opened.
      if (!fst.isFile() || this.isKnown(key, path)) {
        closeSync(fd);
        return undefined;
      }
      if (!initial && !this.tailers.has(key)) this.metrics.discoveryDelay.observe(Math.max(0, this.clock.now() - fst.birthtimeMs) / 1000);
    } catch {
      closeSync(fd);
      return undefined;
    }
    this.pendingKeys.add(key);
    return { path, fd, key };
  }

  /** Waiting to be opened, or tailed under this very path (another path may be a rotation to look at). */
  private isKnown(key: string, path: string): boolean {
    if (this.pendingKeys.has(key)) return true;
    const t = this.tailers.get(key);
    return t !== undefined && t.path === path && t.state === 'active';
  }

  /** Takes over `fd` (opened by preopen): the opener keeps it for a tailer or closes it. */
  private openPath(path: string, initial: boolean, fd: number): Promise<void> {
    return this.opener.open(path, initial, fd);
  }

  private onSealed(chunk: SealedChunk): void {
    (this.ship as ShipClient).enqueue(chunk);
    this.notePeak();
  }

  private onAcked(chunk: SealedChunk, rejected: boolean): void {
    if (rejected) {
      this.metrics.chunksRejected.inc({ reason: 'invalid' });
      this.metrics.linesDropped.inc({ reason: 'invalid' }, chunk.entryCount);
    } else this.metrics.chunksAcked.inc();
    for (const range of chunk.ranges) {
      const delta = range.cursor.ack(range);
      if (delta.lines > 0 && !rejected) {
        this.metrics.linesAcked.inc({ path: range.cursor.path }, delta.lines);
        this.metrics.bytesAcked.inc({ path: range.cursor.path }, delta.bytes);
      }
      if (range.cursor.retired && range.cursor.settled) this.forgetPath(range.cursor.path);
    }
    this.checkpointDirty = true;
    if (!this.paused) this.wake();
  }

  private scheduleCheckpoint(): void {
    this.checkpointTimer = this.clock.setTimeout(() => {
      void this.saveCheckpoints().finally(() => {
        if (this.running) this.scheduleCheckpoint();
      });
    }, this.config.checkpointIntervalMs);
    this.checkpointTimer.unref();
  }

  /** Writes the checkpoints if anything changed; never throws (a failed write is retried next time). */
  async saveCheckpoints(extra: readonly FileCursor[] = []): Promise<void> {
    // Another caller may have started a write while this one waited: wait for that one too. A caller
    // with `extra` cursors always writes (a write it waited for did not include them).
    while (this.saving !== undefined) await this.saving;
    if (!this.checkpointDirty && extra.length === 0) return;
    this.checkpointDirty = false;
    const records = [...[...this.tailers.values()].map((t) => t.cursor), ...extra, ...this.registry.retiredCursors].map((c) => FileRegistry.toRecord(c));
    this.saving = this.store
      .save(records)
      .then(() => this.metrics.checkpointWrites.inc())
      .catch((err: unknown) => {
        this.checkpointDirty = true;
        this.metrics.checkpointErrors.inc();
        this.log.error({ err: errorMessage(err) }, 'checkpoint write failed; will retry');
      })
      .finally(() => {
        this.saving = undefined;
      });
    await this.saving;
  }

  /**
   * Drain: stop reading, send what is read, wait for acknowledgements up to `timeoutMs`, write the
   * checkpoints. Resolves true when everything read was acknowledged.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    if (!this.running && this.ship === undefined) return true;
    this.running = false;
    this.stopping = true;
    this.wake();
    await this.pumpDone;
    await this.openChain;
    await this.discovery?.close();
    if (this.checkpointTimer !== undefined) this.clock.clearTimeout(this.checkpointTimer);
    this.builder?.seal();
    const drained = (await this.ship?.waitIdle(timeoutMs)) ?? true;
    this.checkpointDirty = true;
    await this.saveCheckpoints();
    this.ship?.close();
    this.builder?.close();
    for (const t of this.tailers.values()) await closeAsync(t.fd).catch(() => undefined);
    this.tailers.clear();
    this.ship = undefined;
    return drained;
  }
}

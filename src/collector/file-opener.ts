import { close as closeCb, closeSync, fstat as fstatCb, fstatSync, open as openCb, openSync, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { CollectorConfig } from '../config/collector-config.js';
import type { CollectorMetrics } from '../telemetry/collector-metrics.js';
import { errorMessage } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { FileCursor } from './file-cursor.js';
import { EMPTY_EVIDENCE, HASH_WINDOW, PREFIX_HASH_MAX_BYTES, fdReader, hashPrefix, readAt, readHead, readHeadSync } from './file-identity.js';
import type { FileRegistry } from './file-registry.js';
import type { ActiveFile, Candidate } from './file-registry.js';
import { FileTailer } from './tail-file.js';

const openAsync = promisify(openCb);
const fstatAsync = promisify(fstatCb);
const closeAsync = promisify(closeCb);

/** Compressed rotated copies cannot be read on from an offset: never taken for a copy. */
const COMPRESSED = /\.(gz|bz2|xz|zst|zstd|lz4|lzma|lzo|z|zip|7z|br)$/i;
/** Most files of a directory looked at for a truncated file's copy (rotated names first). */
const MAX_COPY_CANDIDATES = 256;

/** A file opened the moment it was reported, waiting in the open queue. */
interface PreOpened {
  readonly path: string;
  readonly fd: number;
  /** device:inode of the open file. */
  readonly key: string;
}

/** What the opener needs from the collector that owns the tailers. */
export interface OpenerHost {
  readonly config: CollectorConfig;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: CollectorMetrics;
  readonly registry: FileRegistry;
  /** Open tailers by `dev:ino`. */
  readonly tailers: Map<string, FileTailer>;
  /** The checkpoint file was unusable: every file starts from the beginning. */
  forceBeginning(): boolean;
  rescan(): void;
  /** Marks checkpoints dirty; with `extra`, writes them now, including these cursors. */
  checkpoint(extra?: readonly FileCursor[]): Promise<void>;
  wake(): void;
  /** The line limit now (follows the limits the aggregator advertises). */
  maxLineBytes(): number;
  /** A file was closed after its cursor was retired (its per-path series may go). */
  closed(cursor: FileCursor): void;
}

/**
 * Opening files and deciding their identity. A found file is opened at once (so a file deleted a
 * moment later is still read whole), then, in one serialized open queue, resumed, read as new,
 * parked or taken for a copy (see file-registry.ts); a truncated file starts a new generation and its
 * rotated copy, found in the same directory whether or not a glob names it, finishes the unread tail
 * of the old generation under the old file id (copytruncate loses only what logrotate itself loses:
 * lines written between its copy and its truncation, which are in no file). A finished file is
 * closed here too: whether its inode was freed decides whether device+inode still identify it.
 */
export class FileOpener {
  /** Opens, in order: opens and copy searches both change the tailers and the registry. */
  private chain: Promise<void> = Promise.resolve();
  /** device:inode of files opened on discovery and waiting in the open queue. */
  private readonly pendingKeys = new Set<string>();
  private stopping = false;

  constructor(private readonly host: OpenerHost) {}

  /** Resolves when every open queued so far is done. */
  idle(): Promise<void> {
    return this.chain;
  }

  /** Opens nothing more (shutdown); what is queued still runs. */
  stop(): void {
    this.stopping = true;
  }

  /** Runs `task` in the open queue; a failure is logged. */
  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((err: unknown) => this.host.log.warn({ err: errorMessage(err) }, 'looking for a rotated copy failed'));
  }

  /** Paths found by discovery (`initial`: at start-up): each opened at once, decided in the open queue. */
  found(paths: readonly string[], initial: boolean): void {
    if (this.stopping) return;
    const fresh: PreOpened[] = [];
    for (const path of paths) {
      const opened = this.preopen(path, initial);
      if (opened !== undefined) fresh.push(opened);
    }
    if (fresh.length === 0) return;
    this.chain = this.chain.then(async () => {
      for (const { path, fd, key } of fresh) {
        this.pendingKeys.delete(key);
        try {
          await this.open(path, initial, fd);
        } catch (err) {
          this.host.log.warn({ path, err: errorMessage(err) }, 'cannot open file; will retry on the next rescan');
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
    const h = this.host;
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
      h.log.warn({ path, err: errorMessage(err) }, 'cannot open file; will retry on the next rescan');
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
      if (!initial && !h.tailers.has(key)) h.metrics.discoveryDelay.observe(Math.max(0, h.clock.now() - fst.birthtimeMs) / 1000);
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
    const t = this.host.tailers.get(key);
    return t !== undefined && t.path === path && t.state === 'active';
  }

  /**
   * Closes a file read to its end (rotated away or deleted), or one that cannot be read: its cursor is
   * retired and keeps its checkpoint until everything it sent is acknowledged.
   */
  async finish(key: string, tailer: FileTailer): Promise<void> {
    const h = this.host;
    // No links left: closing frees the inode, and the next file created may get it (ext4 and tmpfs
    // reuse freed inodes at once), perhaps with the same first bytes (a header, a short first line).
    // Resuming that file at this cursor's offset would skip its beginning.
    let links = 1;
    try {
      links = fstatSync(tailer.fd).nlink;
    } catch {
      // Cannot tell: keep identifying it by device and inode.
    }
    // Synchronously, from no longer tailed to retired: the open queue may be deciding about this very
    // file (a rotated copy the globs name, read to its end here) and must find its cursor in one of the
    // two places. Found in neither, the file would look new and be read again from 0.
    h.tailers.delete(key);
    if (links === 0) tailer.cursor.markGone();
    h.registry.retire(tailer.cursor);
    void h.checkpoint();
    h.log.info({ path: tailer.path, offset: tailer.cursor.readOffset }, 'finished a rotated-away or deleted file');
    await closeAsync(tailer.fd).catch(() => undefined);
    h.closed(tailer.cursor);
  }

  private activeFiles(): ActiveFile[] {
    return [...this.host.tailers.values()].map((t) => ({ cursor: t.cursor, read: fdReader(t.fd) }));
  }

  /**
   * Decides what a found file is and starts tailing it. `preopened` is a descriptor the collector
   * opened the moment the file was reported (so a file deleted a moment later is still read whole):
   * the opener takes it over, keeping it for a tailer or closing it.
   */
  async open(path: string, initial: boolean, preopened?: number): Promise<void> {
    const h = this.host;
    let fd = preopened;
    if (fd === undefined) {
      const st = await stat(path).catch(() => undefined);
      if (st === undefined || !st.isFile()) return;
      fd = await openAsync(path, 'r');
    }
    let keep = false;
    try {
      // Synchronous, as the collector's open: microseconds here, milliseconds behind the thread pool.
      const fst = fstatSync(fd);
      const key = `${fst.dev}:${fst.ino}`;
      const existing = h.tailers.get(key);
      if (existing !== undefined) {
        h.log.trace({ path, existingPath: existing.path, state: existing.state, fileId: existing.cursor.fileId }, 'already tailed');
        if (existing.path !== path) {
          await existing.checkPath();
          if (existing.state === 'draining') existing.attach(path);
        }
        return;
      }
      const head = readHeadSync(fd);
      const candidate: Candidate = { path, dev: fst.dev, ino: fst.ino, size: fst.size, head, read: fdReader(fd) };
      const decision = await h.registry.decide(candidate, this.activeFiles());
      h.log.debug({ path, dev: fst.dev, ino: fst.ino, size: fst.size, decision: decision.kind }, 'file found');
      let cursor: FileCursor;
      if (decision.kind === 'parked') return;
      if (decision.kind === 'resume') {
        cursor = decision.cursor;
        await this.prepareResume(fd, cursor);
        h.log.info({ path, offset: cursor.readOffset, fileId: cursor.fileId, how: decision.how }, decision.how === 'copy' ? 'continuing a copy of a truncated file' : 'resuming file');
      } else {
        const covered = decision.kind === 'covered';
        const truncatedWhileAway = decision.kind === 'new' && decision.truncatedWhileAway;
        const atEnd = covered || (initial && h.config.startAt === 'end' && !h.forceBeginning() && !truncatedWhileAway);
        const offset = atEnd ? fst.size : 0;
        cursor = h.registry.newCursor(candidate, offset, EMPTY_EVIDENCE);
        cursor.setHead(head);
        if (offset > 0) await this.startAt(fd, cursor, offset);
        if (covered) h.log.info({ path, offset, fileId: cursor.fileId }, 'a copy of lines already read (copytruncate); tailing it from its end');
        else if (truncatedWhileAway) {
          h.metrics.truncations.inc();
          h.log.warn({ path }, 'file was truncated while the collector was away (or rewritten in place); reading it from the start');
          const old = decision.kind === 'new' ? decision.truncated : undefined;
          if (old !== undefined) this.findCopyLater(old, dirname(path), fst);
        } else h.log.info({ path, offset, fileId: cursor.fileId }, 'tailing new file');
      }
      const tailer = this.tailer(fd, cursor, path);
      if (!initial && decision.kind !== 'resume' && h.config.startAt === 'end') {
        // A file first seen while running: its checkpoint is written before its first line is read
        // (see Collector.start()), or a crash before the next periodic write would make a restart take
        // it for a file never seen and, with COLLECTOR_START_AT=end, skip what it holds. (With
        // 'beginning' such a restart reads it from 0: duplicates only, not worth a write per new file.)
        await h.checkpoint([cursor]);
      }
      h.tailers.set(key, tailer);
      await h.checkpoint();
      keep = true;
      h.wake();
    } finally {
      if (!keep) await closeAsync(fd).catch(() => undefined);
    }
  }

  /** Loads what a resumed cursor needs to read on: the bytes before its offset, its prefix crc. */
  private async prepareResume(fd: number, cursor: FileCursor): Promise<void> {
    if (cursor.tailLength === 0 && cursor.readOffset > 0) {
      const n = Math.min(HASH_WINDOW, cursor.readOffset);
      cursor.loadTail(await readAt(fd, n, cursor.readOffset - n));
    }
    if (cursor.readPrefix === undefined) {
      // A checkpoint from before prefix hashes: hash the prefix now, so it is known from here on.
      const length = Math.min(cursor.readOffset, PREFIX_HASH_MAX_BYTES);
      const crc = await hashPrefix(fdReader(fd), length);
      if (crc !== undefined) cursor.learnPrefix({ length, crc });
    }
  }

  /** A new cursor starting at `offset` > 0 (COLLECTOR_START_AT=end, a covered copy): its evidence. */
  private async startAt(fd: number, cursor: FileCursor, offset: number): Promise<void> {
    const n = Math.min(HASH_WINDOW, offset);
    const tail = await readAt(fd, n, offset - n);
    const length = Math.min(offset, PREFIX_HASH_MAX_BYTES);
    const crc = await hashPrefix(fdReader(fd), length);
    cursor.startAt(tail, crc === undefined ? undefined : { length, crc });
  }

  private tailer(fd: number, cursor: FileCursor, path: string): FileTailer {
    const h = this.host;
    const c = h.config;
    return new FileTailer(fd, cursor, path, {
      // Read at every cut: follows the limits the aggregator advertises.
      get maxLineBytes(): number {
        return h.maxLineBytes();
      },
      multilineStartPattern: c.multilineStartPattern,
      multilineTimeoutMs: c.multilineTimeoutMs,
      idleFlushMs: c.idleFlushMs,
      rotateWaitMs: c.rotateWaitMs,
      onDetach: (t, kind) => {
        h.metrics.rotations.inc({ kind });
        h.log.info({ path: t.path, kind }, 'file rotated away or deleted; reading it to its end');
        // A new file at the old path, or the rotated name if the globs match it: look now.
        this.found([t.path], false);
        h.rescan();
      },
    }, h.clock);
  }

  /**
   * The tailed file was truncated (copytruncate, or rewritten in place): its generation is retired and
   * a new one read from 0 on the same descriptor; the rotated copy, if there is one, finishes the old.
   */
  truncated(tailer: FileTailer): void {
    const h = this.host;
    const old = tailer.cursor;
    h.metrics.truncations.inc();
    h.metrics.rotations.inc({ kind: 'copytruncate' });
    h.log.warn({ path: tailer.path, readOffset: old.readOffset, fileId: old.fileId }, 'file truncated; reading it again from the start as a new generation');
    old.markTruncated();
    h.registry.retire(old);
    const cursor = h.registry.newCursor({ path: tailer.path, dev: old.dev, ino: old.ino }, 0, EMPTY_EVIDENCE);
    tailer.restart(cursor);
    this.findCopyLater(old, dirname(tailer.path), { dev: old.dev, ino: old.ino });
    void h.checkpoint();
  }

  private findCopyLater(old: FileCursor, dir: string, live: { dev: number; ino: number }): void {
    const h = this.host;
    this.enqueue(async () => {
      await this.adoptCopy(old, dir, live);
      // A copy the globs name may have been parked waiting for exactly this.
      h.rescan();
    });
  }

  /**
   * Looks in `dir` for a file holding the truncated generation `old` past its read offset (its rotated
   * copy: `app.log.1`, `app.log-20261130`; compressed copies excluded) and tails it from that offset
   * under the old file id, until its end.
   */
  async adoptCopy(old: FileCursor, dir: string, live: { dev: number; ino: number }): Promise<boolean> {
    const h = this.host;
    if (!h.registry.isRetired(old) || old.readOffset === 0) return false;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return false;
    }
    const base = basename(old.path);
    const stem = base.replace(/\.[^.]*$/, '');
    const rank = (n: string): number => (n.startsWith(base) ? 0 : n.startsWith(stem) ? 1 : 2);
    names = names.filter((n) => n !== base && !COMPRESSED.test(n)).sort((a, b) => rank(a) - rank(b));
    for (const name of names.slice(0, MAX_COPY_CANDIDATES)) {
      const path = join(dir, name);
      const st = await stat(path).catch(() => undefined);
      if (st === undefined || !st.isFile() || st.size <= old.readOffset) continue;
      if ((st.dev === live.dev && st.ino === live.ino) || h.tailers.has(`${st.dev}:${st.ino}`)) continue;
      const fd = await openAsync(path, 'r').catch(() => undefined);
      if (fd === undefined) continue;
      let keep = false;
      try {
        const fst = await fstatAsync(fd);
        const key = `${fst.dev}:${fst.ino}`;
        if (h.tailers.has(key)) continue;
        const candidate: Candidate = { path, dev: fst.dev, ino: fst.ino, size: fst.size, head: await readHead(fd), read: fdReader(fd) };
        if (!(await h.registry.claimCopy(candidate, old))) continue;
        await this.prepareResume(fd, old);
        const tailer = this.tailer(fd, old, path);
        // Read to its end, then finished (a rotated copy does not grow); the globs may name it too.
        tailer.drain('rename');
        h.tailers.set(key, tailer);
        keep = true;
        h.log.info({ path, fileId: old.fileId, offset: old.readOffset, size: fst.size }, 'reading the unread tail of a truncated file from its rotated copy');
        await h.checkpoint();
        h.wake();
        return true;
      } finally {
        if (!keep) await closeAsync(fd).catch(() => undefined);
      }
    }
    return false;
  }
}

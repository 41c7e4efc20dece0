import { close as closeCb, fstat as fstatCb, fstatSync, open as openCb } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { CollectorConfig } from '../config/collector-config.js';
import type { CollectorMetrics } from '../telemetry/collector-metrics.js';
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
  /** Looks at these paths again (serialized with other opens). */
  enqueueOpen(paths: readonly string[]): void;
  /** Runs `task` in the open queue (serialized with opens: both change the tailers and the registry). */
  enqueue(task: () => Promise<void>): void;
  rescan(): void;
  /** Marks checkpoints dirty; with `extra`, writes them now, including these cursors. */
  checkpoint(extra?: readonly FileCursor[]): Promise<void>;
  wake(): void;
  /** The line limit now (follows the limits the aggregator advertises). */
  maxLineBytes(): number;
}

/**
 * Opening files and deciding their identity: a file found by discovery is resumed, read as new,
 * parked or taken for a copy (see file-registry.ts); a truncated file starts a new generation and its
 * rotated copy, found in the same directory whether or not a glob names it, finishes the unread tail
 * of the old generation under the old file id (copytruncate loses only what logrotate itself loses:
 * lines written between its copy and its truncation, which are in no file).
 */
export class FileOpener {
  constructor(private readonly host: OpenerHost) {}

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
      cursor.setTail(await readAt(fd, n, cursor.readOffset - n), n);
    }
    if (cursor.readPrefix === undefined) {
      // A checkpoint from before prefix hashes: hash the prefix now, so it is known from here on.
      const length = Math.min(cursor.readOffset, PREFIX_HASH_MAX_BYTES);
      const crc = await hashPrefix(fdReader(fd), length);
      if (crc !== undefined) cursor.readPrefix = { length, crc };
    }
  }

  /** A new cursor starting at `offset` > 0 (COLLECTOR_START_AT=end, a covered copy): its evidence. */
  private async startAt(fd: number, cursor: FileCursor, offset: number): Promise<void> {
    const n = Math.min(HASH_WINDOW, offset);
    const tail = await readAt(fd, n, offset - n);
    cursor.setTail(tail, tail.length);
    const length = Math.min(offset, PREFIX_HASH_MAX_BYTES);
    const crc = await hashPrefix(fdReader(fd), length);
    cursor.readPrefix = crc === undefined ? undefined : { length, crc };
    const ev = cursor.readEvidence();
    cursor.ackedHash = ev.hash;
    cursor.ackedHashLength = ev.hashLength;
    cursor.ackedPrefix = ev.prefix;
  }

  private tailer(fd: number, cursor: FileCursor, path: string): FileTailer {
    const h = this.host;
    const c = h.config;
    const tailer = new FileTailer(fd, cursor, path, {
      // Read at every cut: follows the limits the aggregator advertises.
      get maxLineBytes(): number {
        return h.maxLineBytes();
      },
      multilineStartPattern: c.multilineStartPattern, multilineTimeoutMs: c.multilineTimeoutMs, idleFlushMs: c.idleFlushMs, rotateWaitMs: c.rotateWaitMs }, h.clock);
    tailer.onDetach = (t, kind) => {
      h.metrics.rotations.inc({ kind });
      h.log.info({ path: t.path, kind }, 'file rotated away or deleted; reading it to its end');
      // A new file at the old path, or the rotated name if the globs match it: look now.
      h.enqueueOpen([t.path]);
      h.rescan();
    };
    return tailer;
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
    old.truncated = true;
    h.registry.retire(old);
    const cursor = h.registry.newCursor({ path: tailer.path, dev: old.dev, ino: old.ino }, 0, EMPTY_EVIDENCE);
    tailer.restart(cursor);
    this.findCopyLater(old, dirname(tailer.path), { dev: old.dev, ino: old.ino });
    void h.checkpoint();
  }

  private findCopyLater(old: FileCursor, dir: string, live: { dev: number; ino: number }): void {
    const h = this.host;
    h.enqueue(async () => {
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
        tailer.state = 'draining';
        tailer.detachKind = 'rename';
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

import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { watch } from 'chokidar';
import type { FSWatcher } from 'chokidar';
import picomatch from 'picomatch';
import { glob } from 'tinyglobby';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { DirWatchers } from './dir-watchers.js';
import type { DirEventKind } from './dir-watchers.js';
import { dirWanted, globRoots } from './glob-roots.js';
import type { GlobRoot } from './glob-roots.js';
import { missingInterest, resolveLink } from './link-interests.js';
import type { Interest, LinkFs, PathKind } from './link-interests.js';

/** What discovery reports, as it finds it. */
export interface DiscoveryHandlers {
  /** Paths that match (may repeat known ones: the caller dedupes by device+inode). */
  found(paths: readonly string[]): void;
  /** A glob scan completed and its paths were reported (the start, the periodic rescans, those after events). */
  scanned?(): void;
  /** Something changed under a watched directory: worth polling now (`path`: the file that changed). */
  changed(path?: string): void;
}

export interface DiscoveryOptions {
  readonly rescanIntervalMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

const nodeLinkFs: LinkFs = {
  kind(path: string): PathKind | undefined {
    try {
      const st = lstatSync(path);
      return st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
    } catch {
      return undefined;
    }
  },
  readlink: (path: string) => readlinkSync(path),
};

const interestKey = (dir: string, name: string): string => `${dir}\0${name}`;

/**
 * Finds the files the globs name, as fast as the kernel tells:
 *  - one fs.watch per directory that can hold a match (DirWatchers) reports each created or renamed
 *    entry by name within milliseconds, so a file is opened (and so kept readable) while it lives;
 *  - a matched symlink is followed hop by hop, and the directories its targets live in (or would
 *    appear in) are watched too: a link created before its target resolves when the target appears,
 *    and follows a target replaced by rotation;
 *  - a glob base that does not exist yet is waited for in its nearest existing ancestor;
 *  - chokidar (each glob's base directory, events filtered with picomatch) and a periodic tinyglobby
 *    rescan remain as the safety net for what inotify loses (overflow, network file systems).
 */
export class Discovery {
  private readonly globs: readonly string[];
  private readonly roots: readonly GlobRoot[];
  private readonly isMatch: (path: string) => boolean;
  private readonly dirs: DirWatchers;
  /** Directories watched because they can hold matches. */
  private readonly globDirs = new Set<string>();
  /** (dir, name) → subjects waiting for that name: `L<link path>` or `B<glob base>`. */
  private readonly interests = new Map<string, Set<string>>();
  private readonly subjectInterests = new Map<string, readonly Interest[]>();
  /** Watches held by interests, per directory. */
  private readonly interestDirs = new Map<string, number>();
  private watcher: FSWatcher | undefined;
  private timer: TimerHandle | undefined;
  private closed = false;
  private scanning: Promise<void> | undefined;

  constructor(
    globs: readonly string[],
    private readonly options: DiscoveryOptions,
    private readonly handlers: DiscoveryHandlers,
  ) {
    this.globs = globs.map((g) => resolve(g));
    this.roots = globRoots(this.globs);
    this.isMatch = picomatch(this.globs as string[], { dot: true });
    this.dirs = new DirWatchers(
      (dir, name, kind) => this.onDirEvent(dir, name, kind),
      (dir, err) => this.options.logger.warn({ dir, err: errorMessage(err) }, 'directory watch failed; the periodic rescan covers it'),
    );
  }

  matches(path: string): boolean {
    return this.isMatch(path);
  }

  /** Symlinks being followed (for tests and debugging). */
  get followedLinks(): number {
    let n = 0;
    for (const s of this.subjectInterests.keys()) if (s.startsWith('L')) n++;
    return n;
  }

  /**
   * Starts watching, then scans once (the initial set). Watching first, and waiting until the watcher
   * is ready, leaves no window in which a file created right after start-up is neither listed nor
   * reported by an event.
   */
  async start(): Promise<readonly string[]> {
    for (const root of this.roots) this.watchBase(root.base, false);
    const bases = [...new Set(this.globs.map((g) => picomatch.scan(g).base || '/'))];
    this.watcher = watch(bases, {
      ignoreInitial: true,
      persistent: false,
      // Directories are always traversed (a match may be below them); files are filtered by the globs.
      ignored: (path, stats) => stats?.isFile() === true && !this.isMatch(path),
    });
    this.watcher.on('add', (path: string) => {
      if (this.isMatch(path)) this.handlers.found([path]);
    });
    // A path that changes may name a new file that was never reported as added (recreated after a
    // rename: chokidar can report a change of the path it knew), so it is reported as found too.
    this.watcher.on('change', (path: string) => {
      if (this.isMatch(path)) this.handlers.found([path]);
      this.handlers.changed(path);
    });
    this.watcher.on('unlink', () => this.handlers.changed());
    this.watcher.on('addDir', (path: string) => {
      if (dirWanted(this.roots, path)) this.watchGlobDir(path, true);
    });
    this.watcher.on('error', (err: unknown) => this.options.logger.warn({ err: errorMessage(err) }, 'file watcher error; the periodic rescan covers it'));
    const watcher = this.watcher;
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    const initial = await this.list();
    this.schedule();
    return initial;
  }

  /** Lists every file the globs match now. */
  async list(): Promise<string[]> {
    return glob(this.globs as string[], { absolute: true, onlyFiles: true, dot: true });
  }

  /** Rescans now (also called after events that may have revealed files, e.g. a truncation). */
  rescan(): Promise<void> {
    this.scanning ??= this.list()
      .then((paths) => {
        if (this.closed) return;
        this.handlers.found(paths);
        this.refresh();
        this.handlers.scanned?.();
      })
      .catch((err: unknown) => this.options.logger.warn({ err: errorMessage(err) }, 'rescan failed'))
      .finally(() => {
        this.scanning = undefined;
      });
    return this.scanning;
  }

  /**
   * What events can miss: directories replaced or created unseen, bases that appeared, and symlinks
   * (a glob listing skips a dangling one, so each watched directory is listed for them).
   */
  private refresh(): void {
    for (const root of this.roots) this.watchBase(root.base, true);
    for (const dir of [...this.globDirs]) this.watchGlobDir(dir, true);
    for (const subject of [...this.subjectInterests.keys()]) if (subject.startsWith('L')) this.followLink(subject.slice(1));
  }

  /**
   * Watches a glob's base directory; while it is missing, waits for it in its nearest existing
   * ancestor, and once it exists, watches its parent for its replacement (rm -rf and mkdir again).
   */
  private watchBase(base: string, report: boolean): void {
    if (this.watchGlobDir(base, report)) this.setInterests(`B${base}`, base === dirname(base) ? [] : [{ dir: dirname(base), name: basename(base) }]);
    else this.setInterests(`B${base}`, [missingInterest(base, nodeLinkFs)]);
  }

  /**
   * Watches a directory that can hold matches and lists it: what was created before the watch
   * started is reported (`report`; at start-up the initial glob listing does that), subdirectories
   * that can hold matches are watched too, and matching symlinks are followed. Also re-checks a
   * known directory (replaced since?). False when it is not a directory.
   */
  private watchGlobDir(dir: string, report: boolean): boolean {
    if (this.closed) return false;
    const added = this.dirs.add(dir);
    if (added === 'none') {
      this.dropGlobDir(dir);
      return false;
    }
    // Listed when first watched for matches (it may have been watched for a symlink's sake before).
    const fresh = added === 'new' || !this.globDirs.has(dir);
    this.globDirs.add(dir);
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return true;
    }
    const found: string[] = [];
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (dirWanted(this.roots, path) && (fresh || !this.globDirs.has(path))) this.watchGlobDir(path, report);
      } else if (this.isMatch(path)) {
        if (e.isSymbolicLink()) this.followLink(path);
        if (fresh) found.push(path);
      }
    }
    if (report && found.length > 0) this.handlers.found(found);
    return true;
  }

  /** A directory (and those below it) that is gone or no longer a directory. */
  private dropGlobDir(dir: string): void {
    const prefix = `${dir}/`;
    for (const d of [...this.globDirs]) {
      if (d !== dir && !d.startsWith(prefix)) continue;
      this.globDirs.delete(d);
      if ((this.interestDirs.get(d) ?? 0) === 0) this.dirs.remove(d);
    }
  }

  /** Follows a matched path if it is a symlink; forgets it otherwise. */
  private followLink(path: string): void {
    const r = resolveLink(path, nodeLinkFs);
    this.setInterests(`L${path}`, r.isLink ? r.interests : []);
  }

  private setInterests(subject: string, next: readonly Interest[]): void {
    const prev = this.subjectInterests.get(subject) ?? [];
    for (const i of prev) {
      const key = interestKey(i.dir, i.name);
      const set = this.interests.get(key);
      set?.delete(subject);
      if (set?.size === 0) this.interests.delete(key);
      const n = (this.interestDirs.get(i.dir) ?? 1) - 1;
      if (n > 0) this.interestDirs.set(i.dir, n);
      else {
        this.interestDirs.delete(i.dir);
        if (!this.globDirs.has(i.dir)) this.dirs.remove(i.dir);
      }
    }
    if (next.length === 0) {
      this.subjectInterests.delete(subject);
      return;
    }
    this.subjectInterests.set(subject, next);
    for (const i of next) {
      const key = interestKey(i.dir, i.name);
      let set = this.interests.get(key);
      if (set === undefined) this.interests.set(key, (set = new Set()));
      set.add(subject);
      this.interestDirs.set(i.dir, (this.interestDirs.get(i.dir) ?? 0) + 1);
      if (!this.closed) this.dirs.add(i.dir);
    }
  }

  private onDirEvent(dir: string, name: string | null, kind: DirEventKind): void {
    if (this.closed) return;
    if (name === null) {
      // The kernel did not say what changed (queue overflow): look at everything.
      void this.rescan();
      return;
    }
    const path = join(dir, name);
    if (this.globDirs.has(dir)) {
      if (this.isMatch(path)) {
        if (kind === 'rename') {
          this.followLink(path);
          this.handlers.found([path]);
        }
        this.handlers.changed(path);
      } else if (kind === 'rename' && dirWanted(this.roots, path)) {
        // A directory created (watch and list it) or removed (forget it).
        this.watchGlobDir(path, true);
      }
    }
    const subjects = this.interests.get(interestKey(dir, name));
    if (subjects === undefined) return;
    for (const subject of [...subjects]) {
      const target = subject.slice(1);
      if (subject.startsWith('B')) this.watchBase(target, true);
      else {
        // A write to a link's target: the link's file changed (and a replaced target is found anew).
        if (kind === 'rename') this.followLink(target);
        this.handlers.found([target]);
        this.handlers.changed(target);
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.options.clock.setTimeout(() => {
      void this.rescan().then(() => this.schedule());
    }, this.options.rescanIntervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.dirs.close();
    await this.watcher?.close();
  }
}

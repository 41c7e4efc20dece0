import { statSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';

/** What a directory event says about an entry: created/renamed/deleted, or written. */
export type DirEventKind = 'rename' | 'change';

export type AddResult = 'new' | 'known' | 'none';

interface Watched {
  readonly watcher: FSWatcher;
  readonly dev: number;
  readonly ino: number;
}

/**
 * One `fs.watch` per directory (inotify on Linux): it names every entry created, renamed, deleted or
 * written in the directory within milliseconds, without listing the directory. chokidar lists the
 * whole directory again (a stat per entry, through the thread pool) on its events, one listing at a
 * time, and reports only what that listing shows: under load a new file waited up to 1.8 s, and one
 * deleted before the listing was never reported at all. These watchers are the fast path; chokidar
 * and the rescan stay as the safety net (lost inotify events, overflow, network file systems).
 */
export class DirWatchers {
  private readonly watched = new Map<string, Watched>();

  constructor(
    private readonly onEvent: (dir: string, name: string | null, kind: DirEventKind) => void,
    private readonly onError: (dir: string, err: unknown) => void,
  ) {}

  has(dir: string): boolean {
    return this.watched.has(dir);
  }

  get size(): number {
    return this.watched.size;
  }

  /**
   * Watches `dir`: 'new' when a watch started (also when the directory was replaced by another one
   * since it was watched: the old watch saw the old inode), 'known' when it is watched already,
   * 'none' when it is not a directory (or the watch could not be set up: the rescan covers it).
   */
  add(dir: string): AddResult {
    let st;
    try {
      st = statSync(dir);
    } catch {
      this.remove(dir);
      return 'none';
    }
    if (!st.isDirectory()) {
      this.remove(dir);
      return 'none';
    }
    const cur = this.watched.get(dir);
    if (cur !== undefined && cur.dev === st.dev && cur.ino === st.ino) return 'known';
    this.remove(dir);
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (kind, name) => this.onEvent(dir, typeof name === 'string' ? name : null, kind === 'change' ? 'change' : 'rename'));
    } catch (err) {
      // ENOSPC (inotify watch limit), EMFILE, EACCES: not fatal, only slower.
      this.onError(dir, err);
      return 'none';
    }
    watcher.on('error', (err: unknown) => {
      if (this.watched.get(dir)?.watcher === watcher) this.remove(dir);
      this.onError(dir, err);
    });
    this.watched.set(dir, { watcher, dev: st.dev, ino: st.ino });
    return 'new';
  }

  remove(dir: string): void {
    const cur = this.watched.get(dir);
    if (cur === undefined) return;
    this.watched.delete(dir);
    cur.watcher.close();
  }

  close(): void {
    for (const w of this.watched.values()) w.watcher.close();
    this.watched.clear();
  }
}

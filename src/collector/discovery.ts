import { resolve } from 'node:path';
import { watch } from 'chokidar';
import type { FSWatcher } from 'chokidar';
import picomatch from 'picomatch';
import { glob } from 'tinyglobby';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { Clock, TimerHandle } from '../util/clock.js';

/**
 * Finds the files the globs name: chokidar watches each glob's base directory (chokidar 4 has no glob
 * support, so events are filtered with picomatch), and a periodic tinyglobby rescan catches what the
 * lossy inotify events miss (overflow, directories created later, network file systems).
 */
export interface DiscoveryHandlers {
  /** Paths that match (may repeat known ones: the caller dedupes by device+inode). */
  found(paths: readonly string[]): void;
  /** Something changed under a watched directory: worth polling now. */
  changed(): void;
}

export interface DiscoveryOptions {
  readonly rescanIntervalMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

export class Discovery {
  private readonly globs: readonly string[];
  private readonly isMatch: (path: string) => boolean;
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
    this.isMatch = picomatch(this.globs as string[], { dot: true });
  }

  matches(path: string): boolean {
    return this.isMatch(path);
  }

  /**
   * Starts watching, then scans once (the initial set). Watching first, and waiting until the watcher
   * is ready, leaves no window in which a file created right after start-up is neither listed nor
   * reported by an event.
   */
  async start(): Promise<readonly string[]> {
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
      this.handlers.changed();
    });
    this.watcher.on('unlink', () => this.handlers.changed());
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
        if (!this.closed) this.handlers.found(paths);
      })
      .catch((err: unknown) => this.options.logger.warn({ err: errorMessage(err) }, 'rescan failed'))
      .finally(() => {
        this.scanning = undefined;
      });
    return this.scanning;
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
    await this.watcher?.close();
  }
}

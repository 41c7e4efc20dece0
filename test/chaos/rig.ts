import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import { restartablePort } from '../helpers/free-port.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import type { LineBook } from './accounting.js';
import { OutputReader } from './output-reader.js';
import type { Random } from './random.js';
import { CHAOS_QUIET_SECONDS } from './settings.js';

/**
 * One chaos run's world: a temp directory with log files, a real aggregator (file emitter, raw format, on
 * a fixed loopback port so it can be restarted under the collectors' feet) and real collectors, each with
 * its own state directory. `drain` waits for delivery to finish or stall; `cleanup` kills what is left,
 * unmounts what was mounted and removes the directory.
 */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RigOptions {
  /** Output file of the file emitter (default `<dir>/out/shipped.log`). */
  readonly out?: string;
  readonly spoolDir?: string;
  readonly aggregatorEnv?: Record<string, string>;
  /** Create the output's directory before starting the aggregator (default true). */
  readonly makeOutDir?: boolean;
}

export class ChaosRig {
  readonly dir: string;
  readonly logs: string;
  readonly out: string;
  readonly spoolDir: string;
  readonly output: OutputReader;
  aggregator: AggregatorProcess | undefined;
  readonly collectors = new Map<string, CollectorProcess>();
  private port = 0;
  private readonly mounts: string[] = [];
  /** How the last drain ended: every line there, no progress for the quiet time, or the deadline. */
  drainEnd: 'complete' | 'stalled' | 'deadline' = 'complete';
  /** Lines that were in the output when the operator removed it (they were delivered then). */
  private readonly removed: string[] = [];

  constructor(
    name: string,
    private readonly options: RigOptions = {},
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `mc-chaos-${name}-`));
    this.logs = join(this.dir, 'logs');
    mkdirSync(this.logs);
    this.out = options.out ?? join(this.dir, 'out', 'shipped.log');
    this.spoolDir = options.spoolDir ?? join(this.dir, 'spool');
    this.output = new OutputReader(this.out);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  aggregatorEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      AGGREGATOR_LISTEN_ADDRESS: this.address,
      AGGREGATOR_SPOOL_DIR: this.spoolDir,
      AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: this.out, format: 'raw' }),
      AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
      AGGREGATOR_EMIT_RETRY_INITIAL_DELAY: '50ms',
      AGGREGATOR_EMIT_RETRY_MAX_DELAY: '500ms',
      ...this.options.aggregatorEnv,
      ...extra,
    };
  }

  async startAggregator(extra: Record<string, string> = {}): Promise<AggregatorProcess> {
    if (this.port === 0) this.port = await restartablePort();
    if (this.options.makeOutDir !== false) mkdirSync(join(this.out, '..'), { recursive: true });
    this.aggregator = await startAggregator({ env: this.aggregatorEnv(extra) });
    return this.aggregator;
  }

  collectorEnv(name: string, files: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_REMOTE_ADDRESS: this.address,
      COLLECTOR_FILES: files,
      COLLECTOR_STATE_DIR: join(this.dir, `state-${name}`),
      COLLECTOR_ID: name,
      ...extra,
    };
  }

  async startCollector(name: string, files = join(this.logs, '*.log'), extra: Record<string, string> = {}, timeoutMs = 20_000): Promise<CollectorProcess> {
    const c = await startCollector(this.collectorEnv(name, files, extra), [], timeoutMs);
    this.collectors.set(name, c);
    return c;
  }

  /** Mounts a tmpfs of `size` (e.g. "20m") on `at`, created if missing (root only); unmounted by cleanup. */
  mountTmpfs(at: string, size: string): string {
    mkdirSync(at, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at]);
    this.mounts.push(at);
    return at;
  }

  /**
   * `rm -rf` of the output's directory, as an operator does it. The aggregator is paused (SIGSTOP) while
   * the output is read one last time and removed, so what was in the file when it went counts as
   * delivered and nothing the emitter writes afterwards can be mistaken for it.
   */
  async removeOutputDir(): Promise<void> {
    const child = this.aggregator?.child;
    child?.kill('SIGSTOP');
    try {
      this.removed.push(...this.output.poll());
      execFileSync('rm', ['-rf', join(this.out, '..')]);
      // The file recreated later may get this one's inode number (ext4 reuses it at once).
      this.output.forget();
    } finally {
      child?.kill('SIGCONT');
    }
  }

  /** Everything delivered: what removed outputs held, then the lines of the file the output path names now. */
  delivered(): readonly string[] {
    const now = this.output.poll();
    return this.removed.length === 0 ? now : [...this.removed, ...now];
  }

  /**
   * Polls the output until every line of `book` is there, or nothing new arrived for CHAOS_QUIET_SECONDS
   * (or `minQuietMs`, when a row waits on a slower timer), or `maxMs` passed. Returns the output's lines.
   */
  async drain(book: LineBook, minQuietMs = 0, maxMs = 90_000): Promise<readonly string[]> {
    const quietMs = Math.max(CHAOS_QUIET_SECONDS * 1000, minQuietMs);
    const until = Date.now() + maxMs;
    let lastCount = -1;
    let lastChange = Date.now();
    for (;;) {
      const lines = this.delivered();
      if (book.missing(lines) === 0) {
        this.drainEnd = 'complete';
        await sleep(300); // let late replays land, so duplicates are counted
        return this.delivered();
      }
      if (lines.length !== lastCount) {
        lastCount = lines.length;
        lastChange = Date.now();
      }
      if (Date.now() - lastChange > quietMs || Date.now() > until) {
        this.drainEnd = Date.now() > until ? 'deadline' : 'stalled';
        return lines;
      }
      await sleep(250);
    }
  }

  async cleanup(): Promise<void> {
    await Promise.all([...this.collectors.values()].map((c) => c.kill()));
    this.collectors.clear();
    await this.aggregator?.kill();
    this.aggregator = undefined;
    for (const m of this.mounts.splice(0).reverse()) {
      try {
        execFileSync('umount', [m]);
      } catch {
        execFileSync('umount', ['-l', m]);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A background writer: appends unique lines to the given files at about `linesPerSecond`, in random bursts. */
export interface Writer {
  stop(): Promise<void>;
  /** Lines written so far. */
  readonly count: number;
}

export interface WriterOptions {
  readonly book: LineBook;
  readonly random: Random;
  /** Key name → path. */
  readonly files: ReadonlyMap<string, string>;
  readonly linesPerSecond: number;
  readonly padding?: () => number;
}

export function startWriting(options: WriterOptions): Writer {
  const { book, random, files } = options;
  const names = [...files.keys()];
  const padding = options.padding ?? ((): number => random.int(20, 120));
  let running = true;
  let count = 0;
  const done = (async () => {
    let last = Date.now();
    let owed = 0;
    while (running) {
      await sleep(random.ms(2, 15));
      const now = Date.now();
      owed += ((now - last) / 1000) * options.linesPerSecond;
      last = now;
      while (owed >= 1) {
        const name = random.pick(names);
        const n = Math.min(Math.floor(owed), random.int(1, 60));
        let text = '';
        for (let i = 0; i < n; i++) text += `${book.next(name, padding())}\n`;
        appendFileSync(files.get(name) as string, text);
        owed -= n;
        count += n;
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
    },
    get count() {
      return count;
    },
  };
}

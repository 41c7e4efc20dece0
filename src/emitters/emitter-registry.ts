import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { EmitterSelection } from '../config/aggregator-config.js';
import type { Logger } from '../telemetry/logger.js';
import type { Clock, Random } from '../util/clock.js';
import { BlackholeEmitter } from './blackhole-emitter.js';
import type { Emitter } from './emitter.js';
import { FileEmitter } from './file-emitter.js';
import { fileReopenCounter } from './file-emitter-metrics.js';
import { TextEmitter } from './text-emitter.js';
import { createDedupeMetrics } from '../telemetry/dedupe-metrics.js';

/** The file emitter's commit file (file-commit.ts), in the directory the aggregator gives it. */
export const FILE_COMMIT_NAME = 'file-emitter.commit.json';

/** What the registry hands the emitters it builds. */
export interface EmitterDeps {
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** The aggregator's metrics registry (emitters that export their own metrics register here). */
  readonly registry?: Registry;
  /**
   * The aggregator's spool directory: the file emitter keeps its commit file there and is exactly-once
   * (file-commit.ts). Without it (replays into a file), the file emitter is at-least-once.
   */
  readonly commitDir?: string;
}

/**
 * Configuration → Emitter. The one place that knows every emitter; the rest of the aggregator sees
 * only the Emitter interface.
 */
export async function createEmitter(selection: EmitterSelection, deps: EmitterDeps): Promise<Emitter> {
  // Registered whatever the emitter, so every aggregator exports the series (at zero) for dashboards.
  const onFileReopen = fileReopenCounter(deps.registry);
  const dedupe = createDedupeMetrics(deps.registry);
  switch (selection.kind) {
    case 'blackhole':
      return new BlackholeEmitter();
    case 'file':
      return new FileEmitter({
        path: selection.config.path,
        format: selection.config.format,
        fsync: selection.config.fsync,
        logger: deps.logger.child({ emitter: 'file' }),
        clock: deps.clock,
        onReopen: onFileReopen,
        ...(deps.commitDir === undefined || !selection.config.exactly_once
          ? {}
          : {
              commitPath: join(deps.commitDir, FILE_COMMIT_NAME),
              onReplaysDropped: (n: number) => dedupe.replaysDropped('file_emitter', n),
            }),
      });
    case 'text':
      return new TextEmitter({ format: selection.config.format });
    case 'aeron': {
      // Imported here: the Aeron transport is not loaded by aggregators with another emitter (start-up).
      const [{ createAeronEmitter }, { AeronRouter, entryFilter }] = await Promise.all([import('./aeron-emitter.js'), import('./aeron-router.js')]);
      const aeronDeps = {
        clock: deps.clock,
        random: deps.random,
        logger: deps.logger.child({ emitter: 'aeron' }),
        ...(deps.registry === undefined ? {} : { registry: deps.registry }),
        // Where each publication counts its sent, unconfirmed entries (resends after a restart).
        ...(deps.commitDir === undefined ? {} : { stateDir: deps.commitDir }),
      };
      const [only, ...more] = selection.config.publications;
      // One publication taking every entry: the emitter itself; otherwise the router in front.
      if (only !== undefined && more.length === 0 && entryFilter(only) === undefined) return createAeronEmitter(only, aeronDeps);
      return new AeronRouter(selection.config, aeronDeps);
    }
  }
}

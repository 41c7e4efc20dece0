#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --single-threaded-gc --v8-pool-size=1 --max-semi-space-size=1 --expose-gc
import '../../src/collector/young-generation.js';
import { hostname } from 'node:os';
import { Collector } from '../../src/collector/collector.js';
import { collectorConfigWarnings, collectorOptions, loadCollectorConfig } from '../../src/config/collector-config.js';
import type { CollectorConfig } from '../../src/config/collector-config.js';
import { prepareDirectory } from '../../src/config/directory.js';
import { formatHelp, parseArgs } from '../../src/config/options.js';
import { namingSetting } from '../../src/config/startup-errors.js';
import { ConfigError, errorMessage } from '../../src/errors.js';
import { packageVersion } from '../../src/util/package-info.js';
import { createCollectorMetrics } from '../../src/telemetry/collector-metrics.js';
import { startTelemetryServer } from '../../src/telemetry/http-server.js';
import { createLogger } from '../../src/telemetry/logger.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { systemClock, systemRandom } from '../../src/util/clock.js';
import { OldSpaceBound, exposedMajorGc } from '../../src/util/old-space-bound.js';

/**
 * mega-collector: tails files and ships their lines to the aggregator (see DESIGN.md). `top` and
 * `validate` are imported when called (validate loads grpc-health-check, which parses a .proto), so
 * running costs neither.
 */

function exit(logger: Logger | undefined, code: number): never {
  logger?.flush();
  // pino's async destination needs the flush to reach fd 2 before the process goes.
  setImmediate(() => process.exit(code));
  return undefined as never;
}

/**
 * Promoted garbage the old space may hold before the collector runs a full collection itself
 * (src/util/old-space-bound.ts): at ~0.7 MiB promoted per million lines, one ~10 ms collection about
 * every 3M lines. 1 MiB and 4 MiB were measured too (bench/README.md, "Collector: a bounded old space").
 */
const OLD_SPACE_SLACK_BYTES = 2 * 1024 * 1024;

const COMMANDS = [
  'Commands:',
  '  (none)                  run the collector',
  '  top                     live view of this collector\'s /metrics (COLLECTOR_METRICS_ADDRESS), every second; q quits',
  '  validate [--no-network] check the configuration, state directory, metrics address, files and certificates,',
  '                          and (unless --no-network) that the aggregator answers its gRPC health check with',
  '                          the configured TLS; print the effective configuration (secrets redacted); exit 0 or 2',
].join('\n');

async function main(): Promise<void> {
  let config: CollectorConfig;
  let command: string | undefined;
  const argv = process.argv.slice(2);
  const noNetwork = argv.includes('--no-network');
  let flags: ReadonlyMap<string, string> = new Map();
  try {
    const args = parseArgs(
      collectorOptions,
      argv.filter((a) => a !== '--no-network'),
    );
    if (args.help) {
      process.stdout.write(
        formatHelp('mega-collector', 'Tails files and ships their lines to the aggregator with acknowledged checkpoints.', collectorOptions, COMMANDS),
      );
      return;
    }
    if (args.version) {
      process.stdout.write(`mega-collector ${packageVersion()}\n`);
      return;
    }
    command = args.positional.join(' ');
    if (command !== '' && command !== 'validate' && command !== 'top') throw new ConfigError([`unknown command "${command}" (see --help)`]);
    if (noNetwork && command !== 'validate') throw new ConfigError(['--no-network: only with validate']);
    flags = args.flags;
    config = loadCollectorConfig(process.env, args.flags);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mega-collector: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (command === 'top') {
    const [{ metricsUrl, runTop }, { COLLECTOR_TOP }] = await Promise.all([import('../../src/cli/top.js'), import('../../src/cli/top-view.js')]);
    // exit at once: fetch's keep-alive sockets would hold the process for seconds after q.
    process.exit(await runTop({ program: 'mega-collector', url: metricsUrl(config.metricsAddress), layout: COLLECTOR_TOP }));
  }
  if (command === 'validate') {
    const { validateCollector } = await import('../../src/cli/validate-collector.js');
    const report = await validateCollector(config, process.env, flags, { network: !noNetwork });
    process.stdout.write(report.text);
    process.exitCode = report.ok ? 0 : 2;
    return;
  }
  const shutdownTimeoutMs = config.shutdownTimeoutMs;
  const logger = createLogger('collector', config.logLevel);
  for (const warning of collectorConfigWarnings(process.env, config)) logger.warn(warning);
  // SIGHUP (logrotate's postrotate, a closed terminal) must not stop shipping. The collector keeps no
  // output file to reopen (it logs to stderr) and follows rotated inputs by itself.
  process.on('SIGHUP', () => logger.info({ signal: 'SIGHUP' }, 'SIGHUP: nothing to reopen; continuing'));
  const metrics = createCollectorMetrics();
  let stopping = false;
  const collector = new Collector({
    config,
    clock: systemClock,
    random: systemRandom,
    logger,
    metrics,
    hostname: hostname(),
    onFatal: (err) => {
      logger.fatal({ code: err.code, err: err.message }, 'cannot ship; exiting (checkpoints keep what was acknowledged)');
      void shutdown(1);
    },
  });
  await namingSetting('COLLECTOR_STATE_DIR', () => prepareDirectory(config.stateDir));
  // Only when started through the first line (`--expose-gc`); `node file` runs without the bound.
  const majorGc = exposedMajorGc();
  // What loading left behind (the bundle's source read for compiling, the configuration's parse, the
  // code cache) goes before the first line is read, instead of staying for the whole run: V8 would not
  // collect the old space by itself for a long while (2 MiB of the peak; bench/README.md, "Collector
  // memory, ninth session").
  majorGc?.();
  await collector.start();
  const server = await namingSetting('COLLECTOR_METRICS_ADDRESS', () =>
    startTelemetryServer(config.metricsAddress, metrics.registry, {
      healthy: () => true,
      ready: () => (stopping ? { ok: false, reason: 'shutting down' } : { ok: true }),
    }),
  ).catch(async (err: unknown) => {
    await collector.stop(0).catch(() => undefined);
    throw err;
  });
  const oldSpace =
    majorGc === undefined
      ? undefined
      : new OldSpaceBound({
          clock: systemClock,
          slackBytes: OLD_SPACE_SLACK_BYTES,
          checkEveryMs: 1000,
          minIntervalMs: 5000,
          collect: majorGc,
          onCollect: () => metrics.oldSpaceCollections.inc(),
        });
  oldSpace?.start();
  logger.info({ metricsPort: server.port, collectorId: collector.collectorId, remoteAddress: config.remoteAddress }, 'started');

  async function shutdown(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    logger.info({ timeoutMs: shutdownTimeoutMs }, 'shutting down: sending what is read, waiting for acknowledgements');
    try {
      const drained = await collector.stop(code === 0 ? (shutdownTimeoutMs) : 0);
      if (drained) logger.info('drained: everything read is acknowledged; checkpoints written');
      else logger.warn('shutdown deadline passed with unacknowledged lines; they will be re-read on restart');
    } catch (err) {
      logger.error({ err: errorMessage(err) }, 'error while shutting down');
    }
    oldSpace?.stop();
    await server.close();
    exit(logger, code);
  }
  process.once('SIGTERM', () => void shutdown(0));
  process.once('SIGINT', () => void shutdown(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`mega-collector: ${errorMessage(err).replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});

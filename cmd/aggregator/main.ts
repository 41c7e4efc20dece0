#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4
import { startAggregator } from '../../src/aggregator/aggregator.js';
import { parsePurgeBound, spoolList, spoolPurge, takeArchiveFlags } from '../../src/aggregator/spool-archive-commands.js';
import type { ArchiveFlags } from '../../src/aggregator/spool-archive-commands.js';
import { aggregatorConfigWarnings, aggregatorOptions, loadAggregatorConfig } from '../../src/config/aggregator-config.js';
import type { AggregatorConfig } from '../../src/config/aggregator-config.js';
import { formatHelp, parseArgs } from '../../src/config/options.js';
import { ConfigError, errorMessage } from '../../src/errors.js';
import { packageVersion } from '../../src/util/package-info.js';
import { createLogger } from '../../src/telemetry/logger.js';
import type { Logger } from '../../src/telemetry/logger.js';

const PROGRAM = 'mega-aggregator';

// The first line (the bin, the image and `dist/cmd/aggregator/main.js` run through it; `node file` does
// not) keeps V8's young generation at two 4 MiB semi-spaces instead of growing to 16 MiB each, and glibc
// at two malloc arenas: the peak at 10M lines was 124-150 MiB and is 122-124 at the same CPU
// (bench/README.md, "Aggregator: young generation and malloc arenas").

// The commands other than running (top, validate, spool ...) are imported when called: their modules
// (the emitter file schemas, the replay tools, the top view) would cost every start CPU and memory.

const SUMMARY =
  'Receives log entries from collectors over gRPC, appends them to a durable spool, acknowledges them, ' +
  'batches them and hands each batch to one emitter (blackhole, file, text or aeron).';

const COMMANDS = [
  'Commands:',
  '  (none)                     run the aggregator',
  '  spool status               print the spool\'s segments, bytes, positions and dead-letter count',
  '  spool replay-dead-letters  hand dead letters to the configured emitter again and remove those it confirmed',
  '                             (aggregator stopped; needs an emitter variable: the blackhole is refused)',
  '  spool list [--json]        one line per segment: first/last position and entry time, entries, bytes,',
  '                             pending/retained/delivered (reads beside a running aggregator)',
  '  spool purge --before TIME|SEGMENT:OFFSET',
  '                             delete retained (delivered) segments before it; never pending ones (aggregator stopped)',
  '  spool replay --from TIME|POSITION [--to TIME|POSITION] [--match TAG=VALUE] [--path GLOB] [--emitter-config FILE]',
  '                             hand that range of the spool, in order, to the emitter of the emitter variables',
  '                             or of FILE (never the blackhole); runs beside a live aggregator (no lock)',
  '  spool export --from ... [--to ...] [--match ...] [--path ...] [--format raw|json]',
  '                             write that range to stdout',
  '  top                        live view of this aggregator\'s /metrics (AGGREGATOR_METRICS_ADDRESS), every second; q quits',
  '  validate                   check the configuration, directories, listen addresses, emitter file and',
  '                             certificates; print the effective configuration (secrets redacted); exit 0 or 2',
].join('\n');

/** One line on stderr, then exit: the contract for configuration problems. */
function die(message: string, code = 2): never {
  process.stderr.write(`${PROGRAM}: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(code);
}

function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    try {
      logger.flush(() => resolve());
    } catch {
      resolve();
    }
  });
}

async function run(config: AggregatorConfig, logger: Logger): Promise<number> {
  // Signal handlers go in before start-up, so a SIGTERM that arrives while the spool is being
  // recovered or the server is binding still drains instead of killing the process mid-way.
  let received: NodeJS.Signals | undefined;
  let wake: ((signal: NodeJS.Signals) => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received === undefined) {
      received = signal;
      wake?.(signal);
      return;
    }
    // A second signal while draining means "now".
    logger.warn('second signal: exiting without finishing the drain');
    void flushLogger(logger).then(() => process.exit(1));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // SIGHUP (logrotate's postrotate) reopens the emitter's output; it never stops the aggregator.
  const output: { reopen?: () => Promise<void> } = {};
  process.on('SIGHUP', () => {
    if (output.reopen === undefined || received !== undefined) {
      logger.info({ signal: 'SIGHUP' }, 'SIGHUP ignored: the aggregator is starting or stopping');
      return;
    }
    logger.info({ signal: 'SIGHUP' }, 'SIGHUP: reopening the output');
    void output.reopen();
  });
  const aggregator = await startAggregator(config, { logger });
  output.reopen = () => aggregator.reopenOutput();
  logger.info({ grpcPort: aggregator.grpcPort, metricsPort: aggregator.metricsPort, emitter: config.emitter.kind, tls: config.tls !== null }, 'listening');
  const signal =
    received ??
    (await new Promise<NodeJS.Signals>((resolve) => {
      wake = resolve;
    }));
  logger.info({ signal }, 'signal received');
  await aggregator.shutdown(config.shutdownTimeoutMs);
  return 0;
}

/** `spool replay` / `spool export` take their own flags (the range); configuration from the environment. */
async function runRangeCommand(command: 'replay' | 'export', argv: readonly string[]): Promise<number> {
  let config: AggregatorConfig;
  try {
    config = loadAggregatorConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) die(err.message);
    throw err;
  }
  const logger = createLogger(PROGRAM, config.logLevel);
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  const io = { stdout: process.stdout, stderr: process.stderr };
  try {
    const { runSpoolExport, runSpoolReplay } = await import('../../src/cli/spool-replay.js');
    const run = command === 'replay' ? runSpoolReplay : runSpoolExport;
    return await run(argv, config, logger, abort.signal, io);
  } catch (err) {
    if (err instanceof ConfigError) die(err.message);
    die(errorMessage(err), 1);
  } finally {
    await flushLogger(logger);
  }
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'spool' && (argv[1] === 'replay' || argv[1] === 'export') && !argv.includes('--help')) {
    return runRangeCommand(argv[1], argv.slice(2));
  }
  let args;
  let archive: ArchiveFlags;
  try {
    archive = takeArchiveFlags(argv);
    args = parseArgs(aggregatorOptions, archive.rest);
  } catch (err) {
    die(errorMessage(err));
  }
  if (args.help) {
    process.stdout.write(formatHelp(PROGRAM, SUMMARY, aggregatorOptions, COMMANDS));
    return 0;
  }
  if (args.version) {
    process.stdout.write(`${PROGRAM} ${packageVersion()}\n`);
    return 0;
  }
  let config: AggregatorConfig;
  try {
    config = loadAggregatorConfig(process.env, args.flags);
  } catch (err) {
    if (err instanceof ConfigError) die(err.message);
    throw err;
  }
  const command = args.positional.join(' ');
  const logger = createLogger(PROGRAM, config.logLevel);
  for (const warning of aggregatorConfigWarnings(process.env, config)) logger.warn(warning);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err: err.message, stack: err.stack }, 'uncaught exception');
    void flushLogger(logger).then(() => process.exit(70));
  });
  try {
    switch (command) {
      case '':
        return await run(config, logger);
      case 'top': {
        const [{ metricsUrl, runTop }, { AGGREGATOR_TOP }] = await Promise.all([import('../../src/cli/top.js'), import('../../src/cli/top-view.js')]);
        return await runTop({ program: PROGRAM, url: metricsUrl(config.metricsAddress), layout: AGGREGATOR_TOP });
      }
      case 'validate': {
        const { validateAggregator } = await import('../../src/cli/validate-aggregator.js');
        const report = await validateAggregator(config, process.env, args.flags);
        process.stdout.write(report.text);
        return report.ok ? 0 : 2;
      }
      case 'spool status': {
        const { spoolStatus } = await import('../../src/aggregator/spool-commands.js');
        process.stdout.write(await spoolStatus(config));
        return 0;
      }
      case 'spool list':
        process.stdout.write(await spoolList(config, archive.json));
        return 0;
      case 'spool purge': {
        const purged = await spoolPurge(config, parsePurgeBound(archive.before, Date.now()), logger);
        process.stdout.write(`purged ${purged.segments} retained segments (${purged.bytes} bytes)\n`);
        return 0;
      }
      case 'spool replay-dead-letters': {
        const abort = new AbortController();
        process.once('SIGINT', () => abort.abort());
        process.once('SIGTERM', () => abort.abort());
        const { replayDeadLetters } = await import('../../src/aggregator/spool-commands.js');
        const outcome = await replayDeadLetters(config, logger, abort.signal);
        process.stdout.write(
          `replayed ${outcome.replayed} of ${outcome.total} dead letters (${outcome.entries} entries)` +
            `${outcome.stoppedBecause === undefined ? '' : `; stopped: ${outcome.stoppedBecause}`}\n`,
        );
        return outcome.replayed === outcome.total ? 0 : 1;
      }
      default:
        die(`unknown command "${command}" (see --help)`);
    }
  } catch (err) {
    if (err instanceof ConfigError) die(err.message);
    logger.fatal({ err: errorMessage(err) }, 'cannot start');
    await flushLogger(logger);
    die(errorMessage(err), 1);
  } finally {
    await flushLogger(logger);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => die(errorMessage(err), 1),
);

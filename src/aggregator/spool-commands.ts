import { aggregatorOptions } from '../config/aggregator-config.js';
import type { AggregatorConfig, EmitterSelection } from '../config/aggregator-config.js';
import { createEmitter } from '../emitters/emitter-registry.js';
import type { EmitResult } from '../emitters/emitter.js';
import { arrayBatch } from '../emitters/array-batch.js';
import { emitVerdict } from '../emitters/emit-verdict.js';
import { retry } from '../retry/retry.js';
import { ConfigError, errorMessage } from '../errors.js';
import { Spool } from '../spool/spool.js';
import type { SpoolStats } from '../spool/spool.js';
import type { Logger } from '../telemetry/logger.js';
import { systemClock, systemRandom } from '../util/clock.js';
import { decodeEntries } from '../wire/entry-batch.js';

/** `mega-aggregator spool status`: human-readable lines, one fact per line. */
export function formatSpoolStatus(s: SpoolStats): string {
  const pos = (p: { segment: number; offset: number }): string => `segment ${p.segment} offset ${p.offset}`;
  return [
    `spool directory:    ${s.dir}`,
    `segments:           ${s.segments}`,
    `bytes:              ${s.bytes}${s.maxBytes > 0 ? ` (bound ${s.maxBytes})` : ''}`,
    `appended position:  ${pos(s.appendPosition)}`,
    `delivered position: ${pos(s.delivered)} entry ${s.delivered.entry}`,
    `pending entries:    ${s.pendingEntries}`,
    `dead letters:       ${s.deadLetters}`,
    `corrupt ranges:     ${s.corruptRanges}`,
    '',
  ].join('\n');
}

export async function spoolStatus(config: AggregatorConfig): Promise<string> {
  return formatSpoolStatus(await Spool.inspect(config.spoolDir, config.spoolMaxBytes));
}

export interface ReplayOutcome {
  readonly total: number;
  readonly replayed: number;
  readonly entries: number;
  /** Why replay stopped early, if it did. */
  readonly stoppedBecause?: string;
}

/** The emitter variables, named in the refusal when none is set. */
const EMITTER_VARIABLES = [
  aggregatorOptions.fileConfiguration.env,
  aggregatorOptions.textConfiguration.env,
  aggregatorOptions.aeronConfiguration.env,
];

/**
 * Replay needs an emitter chosen on purpose: without one the aggregator's default, the blackhole,
 * would "accept" every dead letter and they would be removed, gone for good. Throws ConfigError (the
 * program exits 2, the file is untouched).
 */
export function requireReplayEmitter(config: AggregatorConfig): EmitterSelection {
  if (config.emitter.kind === 'blackhole') {
    throw new ConfigError([
      `spool replay-dead-letters: no emitter configured; set one of ${EMITTER_VARIABLES.join(', ')} ` +
        '(without one, the dead letters would go to the blackhole); nothing was replayed or removed',
    ]);
  }
  // A dead letter is removed once replayed: it must be on stable storage by then, not in a page cache.
  return config.emitter.kind === 'file' ? { kind: 'file', config: { ...config.emitter.config, fsync: true } } : config.emitter;
}

/**
 * `mega-aggregator spool replay-dead-letters`: hands every dead letter, oldest first, to the explicitly
 * configured emitter again (refuses without one: see requireReplayEmitter) and removes the ones it
 * confirmed, and only once the emitter is closed without error (flushed). Takes the spool's lock, so
 * it refuses to run next to a live aggregator on the same directory. A retryable failure is retried
 * with the configured backoff up to AGGREGATOR_EMIT_MAX_RETRIES times; a dead letter still refused
 * stays in the file, as do all after it (order is kept): the file is rewritten atomically with what
 * remains.
 */
export async function replayDeadLetters(config: AggregatorConfig, logger: Logger, signal: AbortSignal): Promise<ReplayOutcome> {
  const selection = requireReplayEmitter(config);
  const spool = await Spool.open({
    dir: config.spoolDir,
    maxBytes: config.spoolMaxBytes,
    segmentBytes: config.spoolSegmentBytes,
    ...(config.spoolMinFreeBytes === undefined ? {} : { minFreeBytes: config.spoolMinFreeBytes }),
    logger,
  });
  try {
    const letters = await Spool.readDeadLetters(config.spoolDir);
    if (letters.length === 0) return { total: 0, replayed: 0, entries: 0 };
    const emitter = await createEmitter(selection, { clock: systemClock, random: systemRandom, logger });
    let replayed = 0;
    let entries = 0;
    let stoppedBecause: string | undefined;
    try {
      await emitter.start?.();
      for (const letter of letters) {
        const batch = arrayBatch(replayed + 1, decodeEntries(letter.data));
        const result: EmitResult = await retry(() => emitter.emit(batch, signal), {
          policy: { initialDelayMs: config.emitRetryInitialDelayMs, maxDelayMs: config.emitRetryMaxDelayMs },
          clock: systemClock,
          random: systemRandom,
          signal,
          maxAttempts: config.emitMaxRetries + 1,
          classify: emitVerdict,
        });
        if (result.kind !== 'ok') {
          stoppedBecause = `${result.kind}: ${result.error.message}`;
          break;
        }
        // An emitter that confirms later (Aeron: a subscriber consumed it) has not delivered yet.
        if (result.confirmed !== undefined && !(await result.confirmed)) {
          stoppedBecause = 'the emitter closed before confirming delivery';
          break;
        }
        replayed++;
        entries += batch.count;
      }
    } catch (err) {
      stoppedBecause = `emitter failed: ${errorMessage(err)}`;
    } finally {
      try {
        await emitter.close();
      } catch (err) {
        // Unflushed: what it confirmed may not be where it promised. Keep every dead letter.
        logger.error({ err: errorMessage(err) }, 'emitter close failed; keeping every dead letter');
        stoppedBecause = `emitter close failed: ${errorMessage(err)}`;
        replayed = 0;
        entries = 0;
      }
    }
    if (replayed > 0) await Spool.removeDeadLetters(config.spoolDir, replayed);
    return stoppedBecause === undefined
      ? { total: letters.length, replayed, entries }
      : { total: letters.length, replayed, entries, stoppedBecause };
  } finally {
    await spool.close();
  }
}

import type { AggregatorConfig } from '../config/aggregator-config.js';
import { createEmitter } from '../emitters/emitter-registry.js';
import type { EmitResult } from '../emitters/emitter.js';
import { backoffDelayMs } from '../emitters/backoff.js';
import { errorMessage } from '../errors.js';
import { Spool } from '../spool/spool.js';
import type { SpoolStats } from '../spool/spool.js';
import type { Logger } from '../telemetry/logger.js';
import { sleep, systemClock, systemRandom } from '../util/clock.js';
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

/**
 * `mega-aggregator spool replay-dead-letters`: hands every dead letter, oldest first, to the configured
 * emitter again and removes the ones it accepted. Takes the spool's lock, so it refuses to run next
 * to a live aggregator on the same directory. A retryable failure is retried with the configured
 * backoff up to AGGREGATOR_EMIT_MAX_RETRIES times; a dead letter still refused stays in the file, as do
 * all after it (order is kept).
 */
export async function replayDeadLetters(config: AggregatorConfig, logger: Logger, signal: AbortSignal): Promise<ReplayOutcome> {
  const spool = await Spool.open({ dir: config.spoolDir, maxBytes: config.spoolMaxBytes, segmentBytes: config.spoolSegmentBytes, logger });
  try {
    const letters = await Spool.readDeadLetters(config.spoolDir);
    if (letters.length === 0) return { total: 0, replayed: 0, entries: 0 };
    const emitter = await createEmitter(config.emitter, { clock: systemClock, random: systemRandom, logger });
    await emitter.start?.();
    let replayed = 0;
    let entries = 0;
    let stoppedBecause: string | undefined;
    try {
      for (const letter of letters) {
        const batch = { id: replayed + 1, entries: decodeEntries(letter.data) };
        let result: EmitResult = await emitter.emit(batch, signal);
        for (let attempt = 0; result.kind === 'retryable' && attempt < config.emitMaxRetries && !signal.aborted; attempt++) {
          const delay = backoffDelayMs({ initialDelayMs: config.emitRetryInitialDelayMs, maxDelayMs: config.emitRetryMaxDelayMs }, attempt, systemRandom);
          await sleep(systemClock, delay, signal).catch(() => undefined);
          result = await emitter.emit(batch, signal);
        }
        if (result.kind !== 'ok') {
          stoppedBecause = `${result.kind}: ${result.error.message}`;
          break;
        }
        replayed++;
        entries += batch.entries.length;
      }
    } finally {
      await emitter.close().catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'emitter close failed'));
    }
    if (replayed > 0) await Spool.removeDeadLetters(config.spoolDir, replayed);
    return stoppedBecause === undefined
      ? { total: letters.length, replayed, entries }
      : { total: letters.length, replayed, entries, stoppedBecause };
  } finally {
    await spool.close();
  }
}

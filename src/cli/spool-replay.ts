import { readFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import * as z from 'zod';
import { aeronOutputSchema } from '../config/aeron-config.js';
import { aggregatorOptions, fileEmitterConfigSchema, textEmitterConfigSchema } from '../config/aggregator-config.js';
import type { AggregatorConfig, EmitterSelection } from '../config/aggregator-config.js';
import { arrayBatch } from '../emitters/array-batch.js';
import { emitVerdict } from '../emitters/emit-verdict.js';
import type { Batch, EmitResult, Emitter } from '../emitters/emitter.js';
import { createEmitter } from '../emitters/emitter-registry.js';
import { TextEmitter } from '../emitters/text-emitter.js';
import { ConfigError, errorMessage } from '../errors.js';
import { retry } from '../retry/retry.js';
import { listStoredSegments, readStoredRecords } from '../spool/stored-records.js';
import type { StoredSegment } from '../spool/stored-records.js';
import type { Logger } from '../telemetry/logger.js';
import type { Clock } from '../util/clock.js';
import { systemClock, systemRandom } from '../util/clock.js';
import { decodeEntries } from '../wire/entry-batch.js';
import type { Entry } from '../wire/entry-batch.js';
import { Progress } from './progress.js';
import type { ProgressSink } from './progress.js';
import { RangeFilter, parseRangeArgs } from './spool-range.js';
import type { SpoolRange } from './spool-range.js';

/**
 * `mega-aggregator spool replay` and `spool export`: hand a range of the spool (by time or position,
 * filtered by tag and path) in order to an emitter. The spool is read from its files without its
 * lock (src/spool/stored-records.ts), so both run beside a live aggregator; they never move its
 * delivered position or delete anything.
 */
export interface RangeOutcome {
  readonly entries: number;
  readonly bytes: number;
  readonly batches: number;
  /** Segments listed but deleted before they were read (delivered and not retained). */
  readonly segmentsGone: number[];
  readonly stoppedBecause?: string;
}

export interface RangeRunOptions {
  readonly spoolDir: string;
  readonly range: SpoolRange;
  readonly emitter: Emitter;
  readonly maxBatchSize: number;
  readonly retry: { readonly maxRetries: number; readonly initialDelayMs: number; readonly maxDelayMs: number };
  readonly progress: ProgressSink;
  readonly label: string;
  readonly signal: AbortSignal;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** The emitter keys of --emitter-config: exactly one, with what the emitter's variable takes. */
const emitterFileSchema = z.union([
  z.object({ file: fileEmitterConfigSchema }).strict(),
  z.object({ text: textEmitterConfigSchema }).strict(),
  z.object({ aeron: aeronOutputSchema }).strict(),
]);

const EMITTER_VARIABLES = [
  aggregatorOptions.fileConfiguration.env,
  aggregatorOptions.textConfiguration.env,
  aggregatorOptions.aeronConfiguration.env,
];

/**
 * The replay's emitter: `--emitter-config FILE` (JSON `{"file": {...}}`, `{"text": {...}}` or
 * `{"aeron": {...}}`, each what its variable takes), else the emitter variables. Never the blackhole:
 * without an emitter chosen on purpose the replay would "succeed" into nothing (ConfigError, exit 2).
 */
export async function replayEmitterSelection(config: AggregatorConfig, emitterConfigFile: string | undefined): Promise<EmitterSelection> {
  if (emitterConfigFile !== undefined) {
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(emitterConfigFile, 'utf8'));
    } catch (err) {
      throw new ConfigError([`--emitter-config: cannot read ${emitterConfigFile}: ${errorMessage(err)}`]);
    }
    const parsed = emitterFileSchema.safeParse(doc);
    if (!parsed.success) {
      throw new ConfigError([
        `--emitter-config: ${emitterConfigFile} must hold one of {"file": {...}}, {"text": {...}}, {"aeron": {...}} ` +
          `(what the emitter's variable takes): ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`,
      ]);
    }
    const v = parsed.data;
    if ('file' in v) return { kind: 'file', config: v.file };
    if ('text' in v) return { kind: 'text', config: v.text };
    return { kind: 'aeron', config: v.aeron };
  }
  if (config.emitter.kind === 'blackhole') {
    throw new ConfigError([
      `spool replay: no emitter configured; set one of ${EMITTER_VARIABLES.join(', ')} or pass --emitter-config FILE ` +
        '(a replay into the blackhole would deliver nothing); nothing was replayed',
    ]);
  }
  return config.emitter;
}

/** Emits one batch, retrying a retryable result with the configured backoff; ok only once confirmed. */
async function emitConfirmed(emitter: Emitter, batch: Batch, options: RangeRunOptions): Promise<string | undefined> {
  const result: EmitResult = await retry(() => emitter.emit(batch, options.signal), {
    policy: { initialDelayMs: options.retry.initialDelayMs, maxDelayMs: options.retry.maxDelayMs },
    clock: options.clock ?? systemClock,
    random: systemRandom,
    signal: options.signal,
    maxAttempts: options.retry.maxRetries + 1,
    classify: emitVerdict,
    onFailure: (f) => options.logger?.warn({ err: f.error.message, failures: f.failures, delayMs: f.delayMs }, 'replay: emit failed; retrying'),
  });
  if (result.kind === 'retryable') return `emit failed: ${result.error.message}`;
  if (result.kind === 'fatal') return `the emitter refused ${result.rejected.length} entries: ${result.error.message}`;
  if (result.confirmed !== undefined && !(await result.confirmed)) return 'the emitter closed before confirming delivery';
  return undefined;
}

/** The bytes of the segments a range may read, for the progress total. */
function rangeBytes(segments: readonly StoredSegment[], filter: RangeFilter): number {
  const start = filter.start;
  let total = 0;
  for (const s of segments) {
    if (start !== undefined && s.segment < start.segment) continue;
    total += start !== undefined && s.segment === start.segment ? Math.max(0, s.bytes - start.offset) : s.bytes;
  }
  return total;
}

/** Reads the range in spool order and emits it in batches of at most maxBatchSize entries. */
export async function emitRange(options: RangeRunOptions): Promise<RangeOutcome> {
  const clock = options.clock ?? systemClock;
  const filter = new RangeFilter(options.range);
  const segments = await listStoredSegments(options.spoolDir);
  const start = filter.start;
  const oldest = segments[0];
  if (start !== undefined && (oldest === undefined || start.segment < oldest.segment)) {
    throw new ConfigError([
      `--from ${options.range.from.text}: segment ${start.segment} is no longer in the spool ` +
        `(${oldest === undefined ? 'it holds no segment' : `the oldest is ${oldest.segment}`}); delivered segments are deleted ` +
        'unless AGGREGATOR_SPOOL_RETENTION keeps them',
    ]);
  }
  const progress = new Progress(options.progress, options.label, rangeBytes(segments, filter), clock);
  const segmentsGone: number[] = [];
  let entries = 0;
  let bytes = 0;
  let batches = 0;
  let read = 0;
  let pending: Entry[] = [];
  let stoppedBecause: string | undefined;
  const flush = async (): Promise<boolean> => {
    if (pending.length === 0) return true;
    const batch = arrayBatch(batches + 1, pending);
    const failed = await emitConfirmed(options.emitter, batch, options);
    if (failed !== undefined) {
      stoppedBecause = failed;
      return false;
    }
    batches++;
    entries += pending.length;
    for (const e of pending) bytes += e.line.length + 1;
    pending = [];
    return true;
  };
  try {
    for await (const record of readStoredRecords(options.spoolDir, segments, {
      ...(start === undefined ? {} : { from: start }),
      signal: options.signal,
      onSegmentGone: (n) => {
        segmentsGone.push(n);
        options.logger?.warn({ segment: n }, 'replay: a segment of the range was deleted before it was read (delivered, not retained)');
      },
      onCorrupt: (segment, from, to, reason) => options.logger?.error({ segment, start: from, end: to, reason }, 'replay: skipping a damaged byte range'),
    })) {
      read += record.bytes;
      const selected = filter.select(record.segment, record.offset, decodeEntries(record.data));
      for (const e of selected) {
        pending.push(e);
        if (pending.length >= options.maxBatchSize && !(await flush())) break;
      }
      if (stoppedBecause !== undefined || filter.done) break;
      progress.update(entries + pending.length, read);
    }
    if (stoppedBecause === undefined) await flush();
  } catch (err) {
    if (!options.signal.aborted) throw err;
    stoppedBecause = 'interrupted';
  } finally {
    progress.finish();
  }
  const out = { entries, bytes, batches, segmentsGone };
  return stoppedBecause === undefined ? out : { ...out, stoppedBecause };
}

export interface CommandIo {
  readonly stdout: Writable;
  readonly stderr: ProgressSink;
}

/** `mega-aggregator spool replay ...`; returns the exit code. */
export async function runSpoolReplay(argv: readonly string[], config: AggregatorConfig, logger: Logger, signal: AbortSignal, io: CommandIo): Promise<number> {
  const { range, values } = parseRangeArgs('spool replay', argv, ['emitter-config']);
  const selection = await replayEmitterSelection(config, values['emitter-config']);
  // No commit file: a replay writes what it is asked to, even entries an output already holds.
  const emitter = await createEmitter(selection, { clock: systemClock, random: systemRandom, logger });
  let outcome: RangeOutcome;
  try {
    await emitter.start?.();
    outcome = await emitRange({ ...rangeRun(config, range, emitter, signal, io, logger), label: 'replay' });
  } finally {
    await emitter.close();
  }
  io.stdout.write(
    `replayed ${outcome.entries} entries (${outcome.bytes} bytes) in ${outcome.batches} batches into the ${emitter.name} emitter` +
      `${outcome.segmentsGone.length > 0 ? `; segments deleted before they were read: ${outcome.segmentsGone.join(', ')}` : ''}` +
      `${outcome.stoppedBecause === undefined ? '' : `; stopped: ${outcome.stoppedBecause}`}\n`,
  );
  return outcome.stoppedBecause === undefined && outcome.segmentsGone.length === 0 ? 0 : 1;
}

/** `mega-aggregator spool export ... [--format raw|json]`: the range to stdout. */
export async function runSpoolExport(argv: readonly string[], config: AggregatorConfig, logger: Logger, signal: AbortSignal, io: CommandIo): Promise<number> {
  const { range, values } = parseRangeArgs('spool export', argv, ['format']);
  const format = values.format ?? 'raw';
  if (format !== 'raw' && format !== 'json') throw new ConfigError([`--format: "${format}" is not raw or json`]);
  const emitter = new TextEmitter({ format, stream: io.stdout });
  let outcome: RangeOutcome;
  try {
    outcome = await emitRange({ ...rangeRun(config, range, emitter, signal, io, logger), label: 'export' });
  } finally {
    await emitter.close();
  }
  if (outcome.stoppedBecause !== undefined || outcome.segmentsGone.length > 0) {
    logger.error({ entries: outcome.entries, segmentsGone: outcome.segmentsGone, stoppedBecause: outcome.stoppedBecause }, 'spool export incomplete');
    return 1;
  }
  return 0;
}

function rangeRun(config: AggregatorConfig, range: SpoolRange, emitter: Emitter, signal: AbortSignal, io: CommandIo, logger: Logger): Omit<RangeRunOptions, 'label'> {
  return {
    spoolDir: config.spoolDir,
    range,
    emitter,
    maxBatchSize: config.maxBatchSize,
    retry: { maxRetries: config.emitMaxRetries, initialDelayMs: config.emitRetryInitialDelayMs, maxDelayMs: config.emitRetryMaxDelayMs },
    progress: io.stderr,
    signal,
    logger,
  };
}

import * as z from 'zod';
import { AeronChannelError, parseDestination, parseUdpChannel } from '../aeron/channel-uri.js';
import type { UdpChannel } from '../aeron/channel-uri.js';
import { DEFAULT_TERM_LENGTH, maxMessageLength } from '../aeron/term-math.js';
import { ConfigError } from '../errors.js';
import { parseByteSize } from './byte-size.js';
import { parseGoDuration } from './duration.js';

export const AERON_CONFIGURATION_ENV = 'AGGREGATOR_AERON_CONFIGURATION';

export const AERON_DATA_FORMATS = ['raw', 'json', 'json_batch'] as const;
export type AeronDataFormat = (typeof AERON_DATA_FORMATS)[number];

/**
 * When a batch counts as delivered: `receiver` (the default, at least once): once every receiver's
 * status messages show its subscribers consumed the batch; `sent`: once its last byte left the
 * socket, as Telegraf's Aeron output (NOT at least once: a kill -9, or a subscriber that is away or
 * slow when the aggregator stops, loses what was sent and not consumed; the aggregator warns at start).
 */
export const AERON_CONFIRM_MODES = ['receiver', 'sent'] as const;
export type AeronConfirmMode = (typeof AERON_CONFIRM_MODES)[number];

/** The validated, frozen configuration of the Aeron emitter (units in the names). */
export interface AeronEmitterConfig {
  readonly channel: UdpChannel;
  readonly streamId: number;
  readonly publicationTimeoutMs: number;
  /** Largest encoded message; larger entries are rejected to the dead-letter file. */
  readonly maxMessageSize: number;
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  readonly retryBackoffMultiplier: number;
  readonly maxRetryDelayMs: number;
  readonly dataFormat: AeronDataFormat;
  /** See AERON_CONFIRM_MODES. */
  readonly confirm: AeronConfirmMode;
  /**
   * Which entries this publication takes (Telegraf's tagpass/tagdrop): tag key → globs over the tag's
   * value; the key `path` matches the entry's file path. Absent: every entry.
   */
  readonly tagpass?: Readonly<Record<string, readonly string[]>>;
  readonly tagdrop?: Readonly<Record<string, readonly string[]>>;
}

/** `AGGREGATOR_AERON_CONFIGURATION`: one publication, or several, each taking the entries its filters pass. */
export interface AeronOutputConfig {
  readonly publications: readonly AeronEmitterConfig[];
}

const goDuration = (field: string, dflt: string) =>
  z
    .string()
    .default(dflt)
    .transform((raw, ctx) => {
      try {
        const ms = parseGoDuration(raw);
        if (ms < 0) throw new Error('must not be negative');
        return ms;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `${field}: ${err instanceof Error ? err.message : String(err)} (Go duration such as "10s")` });
        return z.NEVER;
      }
    });

/** A byte count as a number or a size text ("64KiB"). */
const byteCount = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    return parseByteSize(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
    return z.NEVER;
  }
});

/**
 * `AGGREGATOR_AERON_CONFIGURATION` (fields as the Telegraf Aeron output plugin names them). Usable with
 * `json()` from options.ts. `aeron:ipc` and other media are refused: they need a local media driver.
 */
/** Tag key → globs (picomatch), as Telegraf's tagpass/tagdrop tables. */
const tagFilter = z.record(z.string().min(1), z.array(z.string().min(1)).min(1));

export const aeronConfigSchema: z.ZodType<AeronEmitterConfig> = z
  .object({
    channel: z.string().min(1),
    stream_id: z.number().int().min(-2147483648).max(2147483647),
    publication_timeout: goDuration('publication_timeout', '10s'),
    max_message_size: byteCount.optional(),
    max_retries: z.number().int().min(0).max(1_000_000).default(10),
    retry_delay: goDuration('retry_delay', '10ms'),
    retry_backoff_multiplier: z.number().min(1).max(100).default(2),
    max_retry_delay: goDuration('max_retry_delay', '1s'),
    data_format: z.enum(AERON_DATA_FORMATS).default('raw'),
    confirm: z.enum(AERON_CONFIRM_MODES).default('receiver'),
    /** Multi-destination-cast with control-mode=manual: the receivers, as Aeron's addDestination takes them. */
    destinations: z.array(z.string().min(1)).min(1).optional(),
    tagpass: tagFilter.optional(),
    tagdrop: tagFilter.optional(),
  })
  .strict()
  .transform((v, ctx) => {
    let channel: UdpChannel;
    try {
      channel = parseUdpChannel(v.channel);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['channel'], message: err instanceof AeronChannelError ? err.message : String(err) });
      return z.NEVER;
    }
    if (channel.mdc?.mode === 'manual') {
      if (v.destinations === undefined) {
        ctx.addIssue({ code: 'custom', path: ['destinations'], message: 'control-mode=manual needs "destinations": ["aeron:udp?endpoint=host:port", ...]' });
        return z.NEVER;
      }
      const destinations = [];
      for (const [i, text] of v.destinations.entries()) {
        try {
          destinations.push(parseDestination(text));
        } catch (err) {
          ctx.addIssue({ code: 'custom', path: ['destinations', i], message: err instanceof AeronChannelError ? err.message : String(err) });
          return z.NEVER;
        }
      }
      channel = { ...channel, mdc: { mode: 'manual', destinations } };
    } else if (v.destinations !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['destinations'], message: 'destinations are for multi-destination-cast: add control-mode=manual to the channel (and no endpoint=)' });
      return z.NEVER;
    }
    const cap = maxMessageLength(channel.termLength ?? DEFAULT_TERM_LENGTH);
    const maxMessageSize = v.max_message_size ?? cap;
    if (maxMessageSize > cap) {
      ctx.addIssue({
        code: 'custom',
        path: ['max_message_size'],
        message: `${maxMessageSize} exceeds the term's maximum message length ${cap} (term-length / 8, at most 16 MiB)`,
      });
      return z.NEVER;
    }
    if (v.max_retry_delay < v.retry_delay) {
      ctx.addIssue({ code: 'custom', path: ['max_retry_delay'], message: 'must be at least retry_delay' });
      return z.NEVER;
    }
    return Object.freeze({
      channel,
      streamId: v.stream_id,
      publicationTimeoutMs: v.publication_timeout,
      maxMessageSize,
      maxRetries: v.max_retries,
      retryDelayMs: v.retry_delay,
      retryBackoffMultiplier: v.retry_backoff_multiplier,
      maxRetryDelayMs: v.max_retry_delay,
      dataFormat: v.data_format,
      confirm: v.confirm,
      ...(v.tagpass === undefined ? {} : { tagpass: v.tagpass }),
      ...(v.tagdrop === undefined ? {} : { tagdrop: v.tagdrop }),
    });
  });

/**
 * The whole variable: one publication object, or a list of them (Telegraf's several
 * `[[outputs.aeron_publisher]]` blocks). Two publications on the same channel and stream would
 * interleave two sessions for one subscriber, so that is refused.
 */
export const aeronOutputSchema: z.ZodType<AeronOutputConfig> = z.unknown().transform((value, ctx) => {
  // Not a z.union: a union reports only "Invalid input" and hides which parameter was refused.
  const result = Array.isArray(value) ? z.array(aeronConfigSchema).min(1, 'the list needs at least one publication').safeParse(value) : aeronConfigSchema.transform((p) => [p]).safeParse(value);
  if (!result.success) {
    for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    return z.NEVER;
  }
  const publications = result.data;
  const seen = new Set<string>();
  for (const [i, p] of publications.entries()) {
    const key = `${p.channel.text} ${p.streamId}`;
    if (seen.has(key)) {
      ctx.addIssue({ code: 'custom', path: [i], message: `publication ${i} repeats channel ${p.channel.text} with stream_id ${p.streamId}` });
      return z.NEVER;
    }
    seen.add(key);
  }
  return Object.freeze({ publications });
});

/** Parses the env var's JSON text (one publication); a ConfigError names the variable and every problem. */
export function parseAeronConfiguration(raw: string, env = AERON_CONFIGURATION_ENV): AeronEmitterConfig {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError([`${env}: not valid JSON (${err instanceof Error ? err.message : String(err)})`]);
  }
  const result = aeronConfigSchema.safeParse(value);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${env}: ${i.path.length > 0 ? `${i.path.map(String).join('.')}: ` : ''}${i.message}`));
  }
  return result.data;
}

import * as z from 'zod';
import { ConfigError } from '../errors.js';
import { parsePathTemplate } from '../emitters/path-template.js';
import { aeronOutputSchema } from './aeron-config.js';
import type { AeronOutputConfig } from './aeron-config.js';
import { readPemSetting } from './pem.js';
import { parseRetention } from './retention.js';
import type { SpoolRetention } from './retention.js';
import type { IngestLimits } from '../wire/ingest-limits.js';
import { boolean, bytes, durationMs, hostPort, integer, json, oneOf, option, text } from './options.js';
import type { OptionValues } from './options.js';
import { checkCertificate, checkKeyPair } from './tls-material.js';
import { resolveKnownOptions, setVariables } from './unknown-variables.js';

/**
 * The aggregator's configuration: one option table (env vars and flags) that both validates the
 * environment and prints `--help`, then the cross-field rules (one emitter at most, TLS material
 * present when TLS is on) that a per-variable schema cannot express.
 */

export const fileEmitterConfigSchema = z
  .object({
    /** strftime fields in the file name (`shipped-%Y-%m-%d.log`) render in UTC at each emit. */
    path: z
      .string()
      .min(1)
      .superRefine((path, ctx) => {
        try {
          parsePathTemplate(path);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
        }
      }),
    format: z.enum(['raw', 'json']).default('raw'),
    /** fdatasync after every batch (slower; the default relies on the write reaching the kernel). */
    fsync: z.boolean().default(false),
    /**
     * Exactly once across crashes: each batch is committed with the output's size and the entries'
     * identities (file-emitter.commit.json in the spool directory). Off by default: it costs about 2.7 s
     * of aggregator time per million lines (`npm run bench compare`).
     */
    exactly_once: z.boolean().default(false),
  })
  .strict();
export type FileEmitterConfig = z.infer<typeof fileEmitterConfigSchema>;

export const textEmitterConfigSchema = z.object({ format: z.enum(['raw', 'json']).default('raw') }).strict();
export type TextEmitterConfig = z.infer<typeof textEmitterConfigSchema>;

export const notifyConfigSchema = z
  .object({
    integration_key: z.string().min(1),
    incident_key: z.string().min(1),
    identifier: z.string().min(1),
    /** Events API host (optionally with :port, or an https:// URL); default events.pagerduty.com. */
    server: z.string().min(1).optional(),
  })
  .strict();
export type NotifyConfig = z.infer<typeof notifyConfigSchema>;

/** 1 GiB: with gRPC's 2 GiB message ceiling, a chunk always fits in one message with room to spare. */
const MAX_CHUNK_BYTES_CEILING = 1024 * 1024 * 1024;

/** AGGREGATOR_SPOOL_RETENTION (retention.ts); null: off. */
const retention = (): z.ZodType<SpoolRetention | null, string> =>
  z.string().transform((raw, ctx) => {
    try {
      return parseRetention(raw) ?? null;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  });

const BLACKHOLE: EmitterSelection = Object.freeze({ kind: 'blackhole' });

const FALSY = new Set(['', '0', 'false', 'no', 'off']);

/**
 * AGGREGATOR_TEXT_CONFIGURATION: "any truthy value" turns the text emitter on (raw lines); a JSON
 * object may choose the format. A falsy value (0/false/no/off) means "not configured".
 */
const textConfiguration = (): z.ZodType<TextEmitterConfig | null, string> =>
  z.string().transform((raw, ctx) => {
    const v = raw.trim();
    if (FALSY.has(v.toLowerCase())) return null;
    if (!v.startsWith('{')) return { format: 'raw' as const };
    let value: unknown;
    try {
      value = JSON.parse(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not valid JSON (${err instanceof Error ? err.message : String(err)})` });
      return z.NEVER;
    }
    const result = textEmitterConfigSchema.safeParse(value);
    if (!result.success) {
      ctx.addIssue({ code: 'custom', message: result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join(', ') });
      return z.NEVER;
    }
    return result.data;
  });

export const aggregatorOptions = {
  listenAddress: option({
    env: 'AGGREGATOR_LISTEN_ADDRESS',
    flag: '--listen',
    default: '[::]:8000',
    description: 'gRPC listen address: host:port, [v6]:port or [addr%iface]:port; port 0 picks a free port',
    schema: hostPort(),
  }),
  maxBatchSize: option({
    env: 'AGGREGATOR_MAX_BATCH_SIZE',
    default: '1000',
    description:
      'most entries in one emitted batch (the file, text and blackhole emitters write the batches that are ready together at once: see Delivery guarantees, batching)',
    schema: integer({ min: 1, max: 10_000_000 }),
  }),
  maxBatchBytes: option({
    env: 'AGGREGATOR_MAX_BATCH_BYTES',
    default: '1MiB',
    description: 'most line bytes in one emitted batch: cut at AGGREGATOR_MAX_BATCH_SIZE entries or at this, whichever comes first (a longer line goes alone)',
    schema: bytes({ min: 1 }),
  }),
  minimumPublishFrequencyMs: option({
    env: 'AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY',
    default: '15s',
    description: 'longest a non-empty batch waits before it is emitted (Go duration: 300ms, 1.5s, 1h2m)',
    schema: durationMs({ min: 1 }),
  }),
  tls: option({
    env: 'AGGREGATOR_TLS',
    default: '0',
    description: '1/true: serve TLS and require a client certificate signed by AGGREGATOR_TLS_CA_CERTIFICATE',
    schema: boolean(),
  }),
  tlsCertificate: option({
    env: 'AGGREGATOR_TLS_CERTIFICATE',
    description: 'server certificate chain: PEM text or a path to a PEM file (needed with AGGREGATOR_TLS)',
    schema: text({ nonEmpty: true }),
  }),
  tlsKey: option({
    env: 'AGGREGATOR_TLS_KEY',
    description: 'server private key: PEM text or a path to a PEM file (needed with AGGREGATOR_TLS)',
    schema: text({ nonEmpty: true }),
  }),
  tlsCaCertificate: option({
    env: 'AGGREGATOR_TLS_CA_CERTIFICATE',
    description: 'CA that signs client certificates: PEM text or a path (needed with AGGREGATOR_TLS)',
    schema: text({ nonEmpty: true }),
  }),
  textConfiguration: option({
    env: 'AGGREGATOR_TEXT_CONFIGURATION',
    description: 'set (any truthy value, or {"format":"json"}): emit batches as text lines to stdout',
    schema: textConfiguration(),
  }),
  fileConfiguration: option({
    env: 'AGGREGATOR_FILE_CONFIGURATION',
    description: 'JSON {"path": "/var/log/shipped.log", "format": "raw"|"json", "fsync": false, "exactly_once": false}: append batches to a file',
    schema: json(fileEmitterConfigSchema),
  }),
  aeronConfiguration: option({
    env: 'AGGREGATOR_AERON_CONFIGURATION',
    description: 'JSON {"channel": "aeron:udp?endpoint=host:port", "stream_id": 10, ...}, or a list of them routed by tagpass/tagdrop: publish to Aeron',
    schema: json(aeronOutputSchema),
  }),
  notifyConfiguration: option({
    env: 'AGGREGATOR_NOTIFY_CONFIGURATION',
    description: 'JSON {"integration_key", "incident_key", "identifier", "server"?}: PagerDuty Events API v2 escalation',
    schema: json(notifyConfigSchema),
  }),
  emitMaxRetries: option({
    env: 'AGGREGATOR_EMIT_MAX_RETRIES',
    default: '3',
    description: 'failed attempts of one batch before escalation (retries continue at the maximum delay)',
    schema: integer({ min: 0, max: 1_000_000 }),
  }),
  emitRetryInitialDelayMs: option({
    env: 'AGGREGATOR_EMIT_RETRY_INITIAL_DELAY',
    default: '500ms',
    description: 'first backoff delay after a failed emit (Go duration)',
    schema: durationMs({ min: 1 }),
  }),
  emitRetryMaxDelayMs: option({
    env: 'AGGREGATOR_EMIT_RETRY_MAX_DELAY',
    default: '30s',
    description: 'longest backoff delay between emit attempts (Go duration)',
    schema: durationMs({ min: 1 }),
  }),
  spoolDir: option({
    env: 'AGGREGATOR_SPOOL_DIR',
    default: './data/aggregator',
    description: 'spool directory (segments, delivered position, dead letters)',
    schema: text({ nonEmpty: true }),
  }),
  spoolMaxBytes: option({
    env: 'AGGREGATOR_SPOOL_MAX_BYTES',
    default: '1GiB',
    description: 'spool bound; beyond it new chunks are refused with RESOURCE_EXHAUSTED',
    schema: bytes({ min: 1024 }),
  }),
  spoolSegmentBytes: option({
    env: 'AGGREGATOR_SPOOL_SEGMENT_BYTES',
    default: '64MiB',
    description: 'size at which the spool rolls to a new segment file (delivered segments are deleted)',
    schema: bytes({ min: 4096 }),
  }),
  spoolMinFreeBytes: option({
    env: 'AGGREGATOR_SPOOL_MIN_FREE_BYTES',
    description:
      "free space kept on the spool's volume: appends that would leave less are refused with RESOURCE_EXHAUSTED (default: 5% of the volume, at most 256MiB)",
    schema: bytes({ min: 0 }),
  }),
  spoolRetention: option({
    env: 'AGGREGATOR_SPOOL_RETENTION',
    description:
      'keep delivered spool segments for replay until older or larger than this: a duration, a byte size or both (24h, 20GiB, 24h,20GiB; default off); evicted oldest first when undelivered data needs the room',
    schema: retention(),
  }),
  maxChunkBytes: option({
    env: 'AGGREGATOR_MAX_CHUNK_BYTES',
    default: '16MiB',
    description: 'largest accepted chunk (encoded entries), advertised to collectors; larger ones are answered INVALID_ARGUMENT (at most 1GiB)',
    schema: bytes({ min: 1024 }),
  }),
  maxInflightBytes: option({
    env: 'AGGREGATOR_MAX_INFLIGHT_BYTES',
    default: '16MiB',
    description:
      'chunk bytes received and not yet acknowledged, all collector streams together, with room for the next chunk of each stream let read; a stream reads its next chunk only when it fits (HTTP/2 flow control holds the sender meanwhile) and within its fair share (at most 2 × AGGREGATOR_MAX_CHUNK_BYTES); waiting streams go oldest first, and one chunk always passes when nothing is in flight',
    schema: bytes({ min: 64 * 1024 }),
  }),
  maxLineBytes: option({
    env: 'AGGREGATOR_MAX_LINE_BYTES',
    default: '4MiB',
    description: 'largest single entry, advertised to collectors (they split longer lines); a longer one that still arrives goes to the dead-letter file, the rest of its chunk is accepted (default capped at AGGREGATOR_MAX_CHUNK_BYTES)',
    schema: bytes({ min: 1 }),
  }),
  maxEntriesPerChunk: option({
    env: 'AGGREGATOR_MAX_ENTRIES_PER_CHUNK',
    default: '65536',
    description: 'most entries in one chunk, advertised to collectors; bounds the memory one chunk costs downstream (more: INVALID_ARGUMENT)',
    schema: integer({ min: 1, max: 100_000_000 }),
  }),
  maxTags: option({
    env: 'AGGREGATOR_MAX_TAGS',
    default: '64',
    description: 'most tags in one chunk, advertised to collectors (more: INVALID_ARGUMENT)',
    schema: integer({ min: 0, max: 1_000_000 }),
  }),
  maxTagBytes: option({
    env: 'AGGREGATOR_MAX_TAG_BYTES',
    default: '4KiB',
    description: 'most key+value bytes of all tags of one chunk, advertised to collectors; tags repeat in every emitted entry (more: INVALID_ARGUMENT)',
    schema: bytes({ min: 0 }),
  }),
  metricsAddress: option({
    env: 'AGGREGATOR_METRICS_ADDRESS',
    flag: '--metrics-address',
    default: '[::]:9464',
    description: 'HTTP address for /metrics (Prometheus), /healthz and /readyz; port 0 picks a free port',
    schema: hostPort(),
  }),
  shutdownTimeoutMs: option({
    env: 'AGGREGATOR_SHUTDOWN_TIMEOUT',
    default: '10s',
    description: 'on SIGTERM/SIGINT: how long to finish acks and emit buffered batches before exiting',
    schema: durationMs({ min: 0 }),
  }),
  logLevel: option({
    env: 'LOG_LEVEL',
    default: 'info',
    description: 'pino log level',
    schema: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  }),
};

export type AggregatorOptionValues = OptionValues<typeof aggregatorOptions>;

/** Not errors, but likely mistakes, to log at start-up: TLS material given while AGGREGATOR_TLS is off. */
export function aggregatorConfigWarnings(env: NodeJS.ProcessEnv, config: AggregatorConfig): string[] {
  if (config.tls !== null) return [];
  const given = setVariables(env, [aggregatorOptions.tlsCertificate.env, aggregatorOptions.tlsKey.env, aggregatorOptions.tlsCaCertificate.env]);
  if (given.length === 0) return [];
  return [`${given.join(', ')}: set while ${aggregatorOptions.tls.env} is off; the gRPC port serves plaintext (set ${aggregatorOptions.tls.env}=1 to use them)`];
}

export type EmitterSelection =
  | { readonly kind: 'blackhole' }
  | { readonly kind: 'file'; readonly config: FileEmitterConfig }
  | { readonly kind: 'text'; readonly config: TextEmitterConfig }
  | { readonly kind: 'aeron'; readonly config: AeronOutputConfig };

export interface TlsMaterial {
  readonly certificate: Buffer;
  readonly key: Buffer;
  readonly caCertificate: Buffer;
}

export interface AggregatorConfig {
  readonly listenAddress: string;
  readonly metricsAddress: string;
  readonly maxBatchSize: number;
  readonly maxBatchBytes: number;
  readonly minimumPublishFrequencyMs: number;
  readonly tls: TlsMaterial | null;
  readonly emitter: EmitterSelection;
  readonly notify: NotifyConfig | null;
  readonly emitMaxRetries: number;
  readonly emitRetryInitialDelayMs: number;
  readonly emitRetryMaxDelayMs: number;
  readonly spoolDir: string;
  readonly spoolMaxBytes: number;
  readonly spoolSegmentBytes: number;
  /** undefined: 5% of the spool's volume, at most 256 MiB (decided by the spool at open). */
  readonly spoolMinFreeBytes: number | undefined;
  /** undefined: delivered segments are deleted at once. */
  readonly spoolRetention: SpoolRetention | undefined;
  readonly maxChunkBytes: number;
  readonly maxLineBytes: number;
  /** AGGREGATOR_MAX_INFLIGHT_BYTES: chunk bytes awaiting their ack, all streams together. */
  readonly maxInflightBytes: number;
  /** Every chunk limit (maxChunkBytes and maxLineBytes included), as advertised to collectors. */
  readonly limits: IngestLimits;
  readonly shutdownTimeoutMs: number;
  readonly logLevel: string;
}

/**
 * Env + flags → frozen AggregatorConfig. Throws one ConfigError whose message names every variable at
 * fault (per-variable problems first; cross-field rules only when each variable is valid on its own).
 */
export function loadAggregatorConfig(env: NodeJS.ProcessEnv, flags: ReadonlyMap<string, string> = new Map()): AggregatorConfig {
  const { values: v, problems } = resolveKnownOptions(aggregatorOptions, 'AGGREGATOR_', env, flags);

  const emitters: EmitterSelection[] = [];
  const names: string[] = [];
  if (v.fileConfiguration !== undefined) {
    emitters.push({ kind: 'file', config: v.fileConfiguration });
    names.push(aggregatorOptions.fileConfiguration.env);
  }
  if (v.textConfiguration !== undefined && v.textConfiguration !== null) {
    emitters.push({ kind: 'text', config: v.textConfiguration });
    names.push(aggregatorOptions.textConfiguration.env);
  }
  if (v.aeronConfiguration !== undefined) {
    emitters.push({ kind: 'aeron', config: v.aeronConfiguration });
    names.push(aggregatorOptions.aeronConfiguration.env);
  }
  if (emitters.length > 1) problems.push(`${names.join(', ')}: more than one emitter configured; set only one`);

  let tls: TlsMaterial | null = null;
  if (v.tls) {
    const missing: string[] = [];
    // Material is read only when TLS is on, so an image can carry the paths of mounted secrets and
    // switch TLS with one variable (docker-compose.yml does). Every given file is read, so one message
    // names every problem.
    const read = (spec: { env: string }, value: string | undefined, what: string): Buffer | undefined => {
      if (value !== undefined) return readPemSetting(spec.env, value, what, problems);
      missing.push(spec.env);
      return undefined;
    };
    const certificate = read(aggregatorOptions.tlsCertificate, v.tlsCertificate, 'certificate');
    const key = read(aggregatorOptions.tlsKey, v.tlsKey, 'private key');
    const caCertificate = read(aggregatorOptions.tlsCaCertificate, v.tlsCaCertificate, 'CA certificate');
    if (missing.length > 0) problems.push(`${missing.join(', ')}: required when AGGREGATOR_TLS is on`);
    if (certificate !== undefined && key !== undefined) {
      checkKeyPair({ certificate: aggregatorOptions.tlsCertificate.env, key: aggregatorOptions.tlsKey.env }, { certificate, key }, problems);
    }
    if (caCertificate !== undefined) checkCertificate(aggregatorOptions.tlsCaCertificate.env, caCertificate, problems);
    if (certificate !== undefined && key !== undefined && caCertificate !== undefined) tls = { certificate, key, caCertificate };
  }

  if (v.emitRetryMaxDelayMs < v.emitRetryInitialDelayMs) {
    problems.push(
      `${aggregatorOptions.emitRetryMaxDelayMs.env}: must not be shorter than ${aggregatorOptions.emitRetryInitialDelayMs.env}`,
    );
  }
  if (v.maxChunkBytes > v.spoolMaxBytes) {
    problems.push(`${aggregatorOptions.maxChunkBytes.env}: must not exceed ${aggregatorOptions.spoolMaxBytes.env}`);
  }
  if (v.maxChunkBytes > MAX_CHUNK_BYTES_CEILING) {
    problems.push(`${aggregatorOptions.maxChunkBytes.env}: must not exceed 1GiB (a chunk must fit in one gRPC message, at most 2GiB, with room to spare)`);
  }
  // A line limit above the chunk limit contradicts itself (no chunk could carry such a line). Set
  // explicitly, it is refused; the default is capped instead, so a small chunk limit alone still works.
  const lineGiven = (flags.get(aggregatorOptions.maxLineBytes.env) ?? env[aggregatorOptions.maxLineBytes.env] ?? '') !== '';
  if (lineGiven && v.maxLineBytes > v.maxChunkBytes) {
    problems.push(`${aggregatorOptions.maxLineBytes.env}: must not exceed ${aggregatorOptions.maxChunkBytes.env} (no chunk could carry such a line)`);
  }
  const maxLineBytes = Math.min(v.maxLineBytes, v.maxChunkBytes);
  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    listenAddress: v.listenAddress,
    metricsAddress: v.metricsAddress,
    maxBatchSize: v.maxBatchSize,
    maxBatchBytes: v.maxBatchBytes,
    minimumPublishFrequencyMs: v.minimumPublishFrequencyMs,
    tls,
    emitter: emitters[0] ?? BLACKHOLE,
    notify: v.notifyConfiguration ?? null,
    emitMaxRetries: v.emitMaxRetries,
    emitRetryInitialDelayMs: v.emitRetryInitialDelayMs,
    emitRetryMaxDelayMs: v.emitRetryMaxDelayMs,
    spoolDir: v.spoolDir,
    spoolMaxBytes: v.spoolMaxBytes,
    spoolSegmentBytes: v.spoolSegmentBytes,
    spoolMinFreeBytes: v.spoolMinFreeBytes,
    spoolRetention: v.spoolRetention ?? undefined,
    maxChunkBytes: v.maxChunkBytes,
    maxLineBytes,
    maxInflightBytes: v.maxInflightBytes,
    limits: Object.freeze({
      maxChunkBytes: v.maxChunkBytes,
      maxLineBytes,
      maxEntriesPerChunk: v.maxEntriesPerChunk,
      maxTags: v.maxTags,
      maxTagBytes: v.maxTagBytes,
    }),
    shutdownTimeoutMs: v.shutdownTimeoutMs,
    logLevel: v.logLevel,
  });
}

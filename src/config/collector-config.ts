import { isIP } from 'node:net';
import * as z from 'zod';
import { ConfigError } from '../errors.js';
import { boolean, bytes, durationMs, hostPort, integer, oneOf, option, text } from './options.js';
import type { OptionValues } from './options.js';
import { readPemSetting } from './pem.js';
import { checkCertificate, checkKeyPair } from './tls-material.js';
import { resolveKnownOptions, setVariables } from './unknown-variables.js';

/**
 * The collector's configuration: one option table (env vars and the --remote-address flag) that both
 * validates the environment and prints `--help`, then the cross-field rules a per-variable schema
 * cannot express (TLS material present when TLS is on, a compilable multiline pattern).
 */

/** Comma-separated globs; empty items are ignored. */
const globList = (): z.ZodType<readonly string[], string> =>
  z.string().transform((raw, ctx) => {
    const globs = raw
      .split(',')
      .map((g) => g.trim())
      .filter((g) => g !== '');
    if (globs.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'no glob given' });
      return z.NEVER;
    }
    return Object.freeze(globs);
  });

export interface TagPair {
  readonly key: string;
  readonly value: string;
}

/** `key=value,key2=value2`. */
const tagList = (): z.ZodType<readonly TagPair[], string> =>
  z.string().transform((raw, ctx) => {
    const out: TagPair[] = [];
    for (const item of raw.split(',')) {
      const t = item.trim();
      if (t === '') continue;
      const eq = t.indexOf('=');
      if (eq <= 0) {
        ctx.addIssue({ code: 'custom', message: `tag "${t}" is not key=value` });
        return z.NEVER;
      }
      out.push({ key: t.slice(0, eq).trim(), value: t.slice(eq + 1).trim() });
    }
    return Object.freeze(out);
  });

const regex = (): z.ZodType<RegExp, string> =>
  z.string().transform((raw, ctx) => {
    try {
      return new RegExp(raw);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not a valid regular expression (${err instanceof Error ? err.message : String(err)})` });
      return z.NEVER;
    }
  });

/**
 * A gRPC target: host:port without an IPv6 zone id. grpc-js parses targets as URIs, where
 * "[fe80::1%eth0]" is an invalid URL: accepted here, it made the collector retry forever.
 */
const remoteHostPort = (): z.ZodType<string, string> =>
  hostPort().check((ctx) => {
    if (ctx.value.includes('%')) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        message: `"${ctx.value}": an IPv6 zone id (%iface) cannot be used to reach the aggregator; use a global or unique-local address or a DNS name`,
      });
    }
  });

/** Comma-separated remote addresses (each as remoteHostPort); duplicates collapse. */
const remoteList = (): z.ZodType<readonly string[], string> =>
  z.string().transform((raw, ctx) => {
    const items = [...new Set(raw.split(',').map((a) => a.trim()).filter((a) => a !== ''))];
    if (items.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'no address given' });
      return z.NEVER;
    }
    for (const item of items) {
      const parsed = remoteHostPort().safeParse(item);
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', message: parsed.error.issues.map((i) => i.message).join(', ') });
        return z.NEVER;
      }
    }
    return Object.freeze(items);
  });

/** Comma-separated DNS servers: "ip" or "ip:port" / "[v6]:port". */
const dnsServerList = (): z.ZodType<readonly string[], string> =>
  z.string().transform((raw, ctx) => {
    const items = raw.split(',').map((a) => a.trim()).filter((a) => a !== '');
    for (const item of items) {
      const host = item.startsWith('[') ? item.slice(1, item.indexOf(']')) : item.split(':').length === 2 ? (item.split(':')[0] as string) : item;
      if (isIP(host) === 0) {
        ctx.addIssue({ code: 'custom', message: `"${item}" is not an IP address (ip, ip:port or [v6]:port)` });
        return z.NEVER;
      }
    }
    if (items.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'no server given' });
      return z.NEVER;
    }
    return Object.freeze(items);
  });

export const collectorOptions = {
  remoteAddress: option({
    env: 'COLLECTOR_REMOTE_ADDRESS',
    flag: '--remote-address',
    required: true,
    description:
      'aggregators: comma-separated host:port or [v6]:port items, addresses or DNS names (no %zone); names are resolved again every COLLECTOR_RESOLVE_INTERVAL; collectors spread over all addresses and fail over between them',
    schema: remoteList(),
  }),
  resolveIntervalMs: option({
    env: 'COLLECTOR_RESOLVE_INTERVAL',
    default: '30s',
    description: 'how often names in COLLECTOR_REMOTE_ADDRESS are resolved again (also soon after a stream fails) and the preferred aggregator is tried again',
    schema: durationMs({ min: 100 }),
  }),
  dnsServers: option({
    env: 'COLLECTOR_DNS_SERVERS',
    description: 'ip[:port],... : resolve the names of COLLECTOR_REMOTE_ADDRESS with these DNS servers (A and AAAA) instead of the system resolver',
    schema: dnsServerList(),
  }),
  files: option({ env: 'COLLECTOR_FILES', required: true, description: 'comma-separated globs of files to tail (** allowed)', schema: globList() }),
  stateDir: option({ env: 'COLLECTOR_STATE_DIR', default: './data/collector', description: 'checkpoints and the collector id', schema: text({ nonEmpty: true }) }),
  collectorId: option({ env: 'COLLECTOR_ID', description: 'identity of this collector in every entry (default: generated once, kept in the state dir)', schema: text({ nonEmpty: true }) }),
  startAt: option({
    env: 'COLLECTOR_START_AT',
    default: 'beginning',
    description: 'where to start files never seen before that exist at start-up: beginning or end (files appearing later are read from the beginning)',
    schema: oneOf(['beginning', 'end']),
  }),
  tags: option({ env: 'COLLECTOR_TAGS', description: 'key=value,... attached to every entry (host is always attached)', schema: tagList() }),
  tls: option({ env: 'COLLECTOR_TLS', default: '0', description: '1/true: connect with TLS (mTLS when a certificate and key are given)', schema: boolean() }),
  tlsCertificate: option({ env: 'COLLECTOR_TLS_CERTIFICATE', description: 'client certificate, PEM text or path', schema: text({ nonEmpty: true }) }),
  tlsKey: option({ env: 'COLLECTOR_TLS_KEY', description: 'client key, PEM text or path', schema: text({ nonEmpty: true }) }),
  tlsCaCertificate: option({ env: 'COLLECTOR_TLS_CA_CERTIFICATE', description: 'CA that signed the aggregator certificate, PEM text or path', schema: text({ nonEmpty: true }) }),
  bufferMaxBytes: option({ env: 'COLLECTOR_BUFFER_MAX_BYTES', default: '1MiB', description: 'a chunk is sent when it holds this many bytes (less when the aggregator advertises a smaller chunk limit)', schema: bytes({ min: 1024 }) }),
  bufferTimeoutMs: option({ env: 'COLLECTOR_BUFFER_TIMEOUT', default: '1s', description: 'a chunk is sent when its first line is this old, or at once when every file is read to its end', schema: durationMs({ min: 1 }) }),
  maxInflightBytes: option({ env: 'COLLECTOR_MAX_INFLIGHT_BYTES', default: '4MiB', description: 'memory of unacknowledged chunks (their whole buffers) before reading pauses; unset, at least one COLLECTOR_BUFFER_MAX_BYTES', schema: bytes({ min: 64 * 1024 }) }),
  maxLineBytes: option({ env: 'COLLECTOR_MAX_LINE_BYTES', default: '1MiB', description: 'longer lines are split into flagged pieces (PARTIAL ... PARTIAL_LAST, rejoinable by offset) and counted; also split at the aggregator\'s advertised line limit', schema: bytes({ min: 16 }) }),
  multilineStartPattern: option({ env: 'COLLECTOR_MULTILINE_START_PATTERN', description: 'regular expression; a line that does not match it continues the previous entry', schema: regex() }),
  multilineTimeoutMs: option({ env: 'COLLECTOR_MULTILINE_TIMEOUT', default: '1s', description: 'a pending multiline entry is sent after the file is idle this long', schema: durationMs({ min: 1 }) }),
  idleFlushMs: option({ env: 'COLLECTOR_IDLE_FLUSH', default: '5s', description: 'a final line without newline is sent (flagged) after the file is idle this long', schema: durationMs({ min: 1 }) }),
  rescanIntervalMs: option({ env: 'COLLECTOR_RESCAN_INTERVAL', default: '10s', description: 'periodic glob rescan (file events are lossy)', schema: durationMs({ min: 10 }) }),
  pollIntervalMs: option({ env: 'COLLECTOR_POLL_INTERVAL', default: '250ms', description: 'how soon a file found idle is checked again for growth, rotation and truncation', schema: durationMs({ min: 1 }) }),
  pollMaxIntervalMs: option({ env: 'COLLECTOR_POLL_MAX_INTERVAL', default: '2s', description: 'each further idle check of a file doubles the wait, up to this (a write, rotation or truncation the directory watch reports is read at once); unset, at least COLLECTOR_POLL_INTERVAL', schema: durationMs({ min: 1 }) }),
  rotateWaitMs: option({ env: 'COLLECTOR_ROTATE_WAIT', default: '5s', description: 'how long a rotated-away or deleted file is kept open after its last growth', schema: durationMs({ min: 0 }) }),
  checkpointIntervalMs: option({ env: 'COLLECTOR_CHECKPOINT_INTERVAL', default: '100ms', description: 'how often changed checkpoints are written (after a kill -9, lines acknowledged since the last write are sent again)', schema: durationMs({ min: 1 }) }),
  retryInitialDelayMs: option({ env: 'COLLECTOR_RETRY_INITIAL_DELAY', default: '500ms', description: 'reconnect backoff: first delay', schema: durationMs({ min: 1 }) }),
  retryMaxDelayMs: option({ env: 'COLLECTOR_RETRY_MAX_DELAY', default: '30s', description: 'reconnect backoff: largest delay', schema: durationMs({ min: 1 }) }),
  retryMaxTimes: option({ env: 'COLLECTOR_RETRY_MAX_TIMES', description: 'consecutive failed connection attempts before giving up (default unlimited)', schema: integer({ min: 1 }) }),
  shutdownTimeoutMs: option({ env: 'COLLECTOR_SHUTDOWN_TIMEOUT', default: '10s', description: 'on SIGTERM, how long to wait for acknowledgements', schema: durationMs({ min: 0 }) }),
  metricsAddress: option({ env: 'COLLECTOR_METRICS_ADDRESS', default: '[::]:9465', description: 'HTTP /metrics, /healthz, /readyz', schema: hostPort() }),
  logLevel: option({ env: 'LOG_LEVEL', default: 'info', description: 'pino level', schema: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']) }),
};

type CollectorOptionValues = OptionValues<typeof collectorOptions>;

/** The validated configuration; TLS material is loaded (PEM bytes) and present only when TLS is on. */
export type CollectorConfig = Omit<CollectorOptionValues, 'tlsCertificate' | 'tlsKey' | 'tlsCaCertificate'> & {
  readonly tlsCertificate: Buffer | undefined;
  readonly tlsKey: Buffer | undefined;
  readonly tlsCaCertificate: Buffer | undefined;
};

/** Not errors, but likely mistakes, to log at start-up: TLS material given while COLLECTOR_TLS is off. */
export function collectorConfigWarnings(env: NodeJS.ProcessEnv, config: CollectorConfig): string[] {
  if (config.tls) return [];
  const given = setVariables(env, [collectorOptions.tlsCertificate.env, collectorOptions.tlsKey.env, collectorOptions.tlsCaCertificate.env]);
  if (given.length === 0) return [];
  return [`${given.join(', ')}: set while ${collectorOptions.tls.env} is off; the collector connects in plaintext (set ${collectorOptions.tls.env}=1 to use them)`];
}

/** Validates env + flags into a frozen config; throws one ConfigError naming every problem. */
export function loadCollectorConfig(env: NodeJS.ProcessEnv, flags?: ReadonlyMap<string, string>): CollectorConfig {
  const { values: options, problems } = resolveKnownOptions(collectorOptions, 'COLLECTOR_', env, flags);
  // Material is read only when TLS is on, so an image can carry the paths of mounted secrets and
  // switch TLS with one variable (docker-compose.yml does), as the aggregator does.
  const read = (spec: { env: string }, value: string | undefined, what: string): Buffer | undefined => {
    if (!options.tls || value === undefined) return undefined;
    return readPemSetting(spec.env, value, what, problems);
  };
  const tlsCertificate = read(collectorOptions.tlsCertificate, options.tlsCertificate, 'certificate');
  const tlsKey = read(collectorOptions.tlsKey, options.tlsKey, 'private key');
  const tlsCaCertificate = read(collectorOptions.tlsCaCertificate, options.tlsCaCertificate, 'CA certificate');
  if (tlsCertificate !== undefined && tlsKey !== undefined) {
    checkKeyPair({ certificate: collectorOptions.tlsCertificate.env, key: collectorOptions.tlsKey.env }, { certificate: tlsCertificate, key: tlsKey }, problems);
  }
  if (tlsCaCertificate !== undefined) checkCertificate(collectorOptions.tlsCaCertificate.env, tlsCaCertificate, problems);
  if (options.tls && (options.tlsCertificate === undefined) !== (options.tlsKey === undefined)) {
    problems.push('COLLECTOR_TLS_CERTIFICATE and COLLECTOR_TLS_KEY: give both (mTLS) or neither');
  }
  if (options.retryMaxDelayMs < options.retryInitialDelayMs) {
    problems.push('COLLECTOR_RETRY_MAX_DELAY: must not be below COLLECTOR_RETRY_INITIAL_DELAY');
  }
  // Contradictory sizes: refused when set explicitly (the default line limit is simply capped by a
  // small buffer: long lines are split into pieces that fit a chunk).
  const given = (spec: { env: string }): boolean => (env[spec.env] ?? '') !== '';
  if (given(collectorOptions.maxLineBytes) && options.maxLineBytes > options.bufferMaxBytes) {
    problems.push('COLLECTOR_MAX_LINE_BYTES: must not exceed COLLECTOR_BUFFER_MAX_BYTES (no chunk could carry such a line)');
  }
  if (given(collectorOptions.bufferMaxBytes) && given(collectorOptions.maxInflightBytes) && options.bufferMaxBytes > options.maxInflightBytes) {
    problems.push('COLLECTOR_BUFFER_MAX_BYTES: must not exceed COLLECTOR_MAX_INFLIGHT_BYTES (reading would pause before a chunk fills)');
  }
  if (given(collectorOptions.pollIntervalMs) && given(collectorOptions.pollMaxIntervalMs) && options.pollMaxIntervalMs < options.pollIntervalMs) {
    problems.push('COLLECTOR_POLL_MAX_INTERVAL: must not be below COLLECTOR_POLL_INTERVAL');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // The default longest poll wait grows to a longer COLLECTOR_POLL_INTERVAL given alone (and shrinks to
  // a COLLECTOR_POLL_MAX_INTERVAL below the default poll interval given alone).
  const pollIntervalMs = given(collectorOptions.pollIntervalMs) ? options.pollIntervalMs : Math.min(options.pollIntervalMs, options.pollMaxIntervalMs);
  const pollMaxIntervalMs = Math.max(options.pollMaxIntervalMs, pollIntervalMs);
  // The default in-flight bound grows to hold one chunk of a larger COLLECTOR_BUFFER_MAX_BYTES given alone.
  const maxInflightBytes = given(collectorOptions.maxInflightBytes) ? options.maxInflightBytes : Math.max(options.maxInflightBytes, options.bufferMaxBytes);
  // A small in-flight bound alone (COLLECTOR_MAX_INFLIGHT_BYTES=64KiB) caps the default chunk size.
  const bufferMaxBytes = Math.min(options.bufferMaxBytes, maxInflightBytes);
  return Object.freeze({ ...options, pollIntervalMs, pollMaxIntervalMs, bufferMaxBytes, maxInflightBytes, tlsCertificate, tlsKey, tlsCaCertificate });
}

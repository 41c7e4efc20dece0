import { describe, expect, it } from 'vitest';
import { aggregatorOptions, loadAggregatorConfig } from '../../src/config/aggregator-config.js';
import { formatHelp } from '../../src/config/options.js';
import { ConfigError } from '../../src/errors.js';
import { FIXTURE_CERT, FIXTURE_KEY, FIXTURE_OTHER_KEY } from '../helpers/pem-fixtures.js';

const AERON = '{"channel":"aeron:udp?endpoint=127.0.0.1:40123","stream_id":10}';
/** A real certificate written with literal "\\n" sequences, as env files often carry PEM. */
const PEM = FIXTURE_CERT.replace(/\n/g, '\\n');

function problem(env: Record<string, string>): string {
  try {
    loadAggregatorConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('aggregator configuration', () => {
  it('has the documented defaults, with blackhole when no emitter is set', () => {
    const c = loadAggregatorConfig({});
    expect(c).toMatchObject({
      listenAddress: '[::]:8000',
      metricsAddress: '[::]:9464',
      maxBatchSize: 1000,
      maxBatchBytes: 1024 ** 2,
      minimumPublishFrequencyMs: 15_000,
      tls: null,
      emitter: { kind: 'blackhole' },
      notify: null,
      emitMaxRetries: 3,
      emitRetryInitialDelayMs: 500,
      emitRetryMaxDelayMs: 30_000,
      spoolDir: './data/aggregator',
      spoolMaxBytes: 1024 ** 3,
      maxChunkBytes: 16 * 1024 ** 2,
      shutdownTimeoutMs: 10_000,
      logLevel: 'info',
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('parses Go durations, byte sizes and flags (a flag beats its env var)', () => {
    const c = loadAggregatorConfig(
      { AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '1m30.5s', AGGREGATOR_SPOOL_MAX_BYTES: '2GiB', AGGREGATOR_LISTEN_ADDRESS: '127.0.0.1:1' },
      new Map([['--listen', '[::1]:9000']]),
    );
    expect(c.minimumPublishFrequencyMs).toBe(90_500);
    expect(c.spoolMaxBytes).toBe(2 * 1024 ** 3);
    expect(c.listenAddress).toBe('[::1]:9000');
  });

  it('selects the file, text or aeron emitter', () => {
    expect(loadAggregatorConfig({ AGGREGATOR_FILE_CONFIGURATION: '{"path":"/x.log","format":"json"}' }).emitter).toEqual({
      kind: 'file',
      config: { path: '/x.log', format: 'json', fsync: false, exactly_once: false },
    });
    expect(loadAggregatorConfig({ AGGREGATOR_TEXT_CONFIGURATION: 'yes please' }).emitter).toEqual({ kind: 'text', config: { format: 'raw' } });
    expect(loadAggregatorConfig({ AGGREGATOR_TEXT_CONFIGURATION: '{"format":"json"}' }).emitter).toEqual({ kind: 'text', config: { format: 'json' } });
    expect(loadAggregatorConfig({ AGGREGATOR_TEXT_CONFIGURATION: '0' }).emitter).toEqual({ kind: 'blackhole' });
    const aeron = loadAggregatorConfig({ AGGREGATOR_AERON_CONFIGURATION: AERON }).emitter;
    expect(aeron.kind).toBe('aeron');
    if (aeron.kind === 'aeron') expect(aeron.config.publications.map((p) => p.streamId)).toEqual([10]);
    expect(problem({ AGGREGATOR_AERON_CONFIGURATION: '{"channel":"aeron:ipc","stream_id":10}' })).toMatch(/^[^\n]*AGGREGATOR_AERON_CONFIGURATION: /);
  });

  it('refuses two or more emitters and names them', () => {
    expect(problem({ AGGREGATOR_TEXT_CONFIGURATION: '1', AGGREGATOR_AERON_CONFIGURATION: AERON, AGGREGATOR_FILE_CONFIGURATION: '{"path":"/x"}' })).toMatch(
      /AGGREGATOR_FILE_CONFIGURATION, AGGREGATOR_TEXT_CONFIGURATION, AGGREGATOR_AERON_CONFIGURATION: more than one emitter/,
    );
  });

  it('loads TLS material from PEM text (with literal \\n) and requires all three with AGGREGATOR_TLS', () => {
    const c = loadAggregatorConfig({
      AGGREGATOR_TLS: 'true',
      AGGREGATOR_TLS_CERTIFICATE: PEM,
      AGGREGATOR_TLS_KEY: FIXTURE_KEY,
      AGGREGATOR_TLS_CA_CERTIFICATE: PEM,
    });
    expect(c.tls?.certificate.toString()).toBe(FIXTURE_CERT);
    expect(problem({ AGGREGATOR_TLS: '1', AGGREGATOR_TLS_CERTIFICATE: PEM })).toMatch(/AGGREGATOR_TLS_KEY, AGGREGATOR_TLS_CA_CERTIFICATE: required/);
    // Without AGGREGATOR_TLS, material is not needed.
    expect(loadAggregatorConfig({ AGGREGATOR_TLS: '0' }).tls).toBeNull();
  });

  it('refuses a key that does not belong to the certificate, naming both variables', () => {
    const tls = { AGGREGATOR_TLS: '1', AGGREGATOR_TLS_CERTIFICATE: FIXTURE_CERT, AGGREGATOR_TLS_CA_CERTIFICATE: FIXTURE_CERT };
    expect(problem({ ...tls, AGGREGATOR_TLS_KEY: FIXTURE_OTHER_KEY })).toMatch(
      /AGGREGATOR_TLS_KEY: the private key does not match the certificate in AGGREGATOR_TLS_CERTIFICATE/,
    );
    expect(problem({ ...tls, AGGREGATOR_TLS_KEY: '-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----' })).toMatch(/AGGREGATOR_TLS_KEY: not a usable private key/);
    expect(problem({ ...tls, AGGREGATOR_TLS_KEY: FIXTURE_KEY, AGGREGATOR_TLS_CA_CERTIFICATE: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' })).toMatch(
      /AGGREGATOR_TLS_CA_CERTIFICATE: not a valid X\.509 certificate/,
    );
  });

  it('does not read TLS material while AGGREGATOR_TLS is off (paths of unmounted secrets are fine)', () => {
    // A read would throw here (test/helpers/unit-purity.ts); reading them with TLS on, and the ENOENT
    // it reports, is test/integration/aggregator-config.test.ts's.
    const paths = {
      AGGREGATOR_TLS_CERTIFICATE: '/nonexistent/server.crt',
      AGGREGATOR_TLS_KEY: '/nonexistent/server.key',
      AGGREGATOR_TLS_CA_CERTIFICATE: '/nonexistent/ca.crt',
    };
    expect(loadAggregatorConfig({ ...paths, AGGREGATOR_TLS: '0' }).tls).toBeNull();
  });

  it('validates JSON configurations with their schema and names the field', () => {
    expect(problem({ AGGREGATOR_FILE_CONFIGURATION: '{"path":"/x","format":"xml"}' })).toMatch(/AGGREGATOR_FILE_CONFIGURATION: format/);
    expect(problem({ AGGREGATOR_FILE_CONFIGURATION: '{"path":"/x","colour":"red"}' })).toMatch(/AGGREGATOR_FILE_CONFIGURATION: .*colour/);
    expect(problem({ AGGREGATOR_NOTIFY_CONFIGURATION: '{"integration_key":"a","incident_key":"b"}' })).toMatch(/AGGREGATOR_NOTIFY_CONFIGURATION: identifier/);
    const c = loadAggregatorConfig({
      AGGREGATOR_NOTIFY_CONFIGURATION: '{"integration_key":"a","incident_key":"b","identifier":"c","server":"127.0.0.1:8443"}',
    });
    expect(c.notify).toEqual({ integration_key: 'a', incident_key: 'b', identifier: 'c', server: '127.0.0.1:8443' });
  });

  it('collects every problem into one message', () => {
    const msg = problem({ AGGREGATOR_MAX_BATCH_SIZE: '0', AGGREGATOR_EMIT_RETRY_INITIAL_DELAY: 'soon', LOG_LEVEL: 'loud' });
    expect(msg).toMatch(/AGGREGATOR_MAX_BATCH_SIZE: must be at least 1/);
    expect(msg).toMatch(/AGGREGATOR_EMIT_RETRY_INITIAL_DELAY/);
    expect(msg).toMatch(/LOG_LEVEL/);
    expect(msg).not.toContain('\n');
  });

  it('checks cross-field rules', () => {
    expect(problem({ AGGREGATOR_EMIT_RETRY_INITIAL_DELAY: '1m', AGGREGATOR_EMIT_RETRY_MAX_DELAY: '1s' })).toMatch(/AGGREGATOR_EMIT_RETRY_MAX_DELAY/);
    expect(problem({ AGGREGATOR_SPOOL_MAX_BYTES: '1MiB', AGGREGATOR_MAX_CHUNK_BYTES: '2MiB' })).toMatch(/AGGREGATOR_MAX_CHUNK_BYTES/);
  });

  it('refuses contradictory size limits, naming the variables; caps a default line limit at a smaller chunk limit', () => {
    expect(problem({ AGGREGATOR_MAX_CHUNK_BYTES: '1MiB', AGGREGATOR_MAX_LINE_BYTES: '2MiB' })).toMatch(
      /AGGREGATOR_MAX_LINE_BYTES: must not exceed AGGREGATOR_MAX_CHUNK_BYTES/,
    );
    expect(problem({ AGGREGATOR_SPOOL_MAX_BYTES: '8GiB', AGGREGATOR_MAX_CHUNK_BYTES: '1.5GiB' })).toMatch(/AGGREGATOR_MAX_CHUNK_BYTES: must not exceed 1GiB/);
    const c = loadAggregatorConfig({ AGGREGATOR_MAX_CHUNK_BYTES: '16KiB' });
    expect(c.limits).toEqual({ maxChunkBytes: 16 * 1024, maxLineBytes: 16 * 1024, maxEntriesPerChunk: 65_536, maxTags: 64, maxTagBytes: 4096 });
  });

  it('--help is generated from the same table and lists every variable of DESIGN.md', () => {
    const help = formatHelp('mega-aggregator', 'x', aggregatorOptions);
    for (const v of [
      'AGGREGATOR_LISTEN_ADDRESS',
      'AGGREGATOR_MAX_BATCH_SIZE',
      'AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY',
      'AGGREGATOR_TLS',
      'AGGREGATOR_TLS_CERTIFICATE',
      'AGGREGATOR_TLS_KEY',
      'AGGREGATOR_TLS_CA_CERTIFICATE',
      'AGGREGATOR_TEXT_CONFIGURATION',
      'AGGREGATOR_FILE_CONFIGURATION',
      'AGGREGATOR_AERON_CONFIGURATION',
      'AGGREGATOR_NOTIFY_CONFIGURATION',
      'AGGREGATOR_EMIT_MAX_RETRIES',
      'AGGREGATOR_EMIT_RETRY_INITIAL_DELAY',
      'AGGREGATOR_EMIT_RETRY_MAX_DELAY',
      'AGGREGATOR_SPOOL_DIR',
      'AGGREGATOR_SPOOL_MAX_BYTES',
      'AGGREGATOR_METRICS_ADDRESS',
      'AGGREGATOR_SHUTDOWN_TIMEOUT',
      'AGGREGATOR_MAX_CHUNK_BYTES',
      'LOG_LEVEL',
    ]) {
      expect(help).toContain(v);
    }
  });
});

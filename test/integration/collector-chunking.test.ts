import { unlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadCollectorConfig } from '../../src/config/collector-config.js';
import { ConfigError } from '../../src/errors.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { TailFixture } from '../helpers/collector-tail-fixture.js';
import { FIXTURE_CERT, FIXTURE_OTHER_KEY } from '../helpers/pem-fixtures.js';

let fx: TailFixture;
afterEach(() => fx?.cleanup());

describe('ChunkBuilder in virtual time', () => {
  it('seals a chunk when its first entry is COLLECTOR_BUFFER_TIMEOUT old, not before', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('a.log'), 'one\n');
    const t = fx.tail('a.log');
    await t.step(fx.builder, fx.buf);
    fx.clock.advance(999);
    expect(fx.chunks).toHaveLength(0);
    fx.clock.advance(1);
    expect(fx.chunks).toHaveLength(1);
    const chunk = fx.chunks[0];
    expect(chunk?.entryCount).toBe(1);
    expect(chunk?.ranges.map((r) => [r.endOffset, r.lines])).toEqual([[4, 1]]);
    expect(decodeEntries(chunk?.payload ?? Buffer.alloc(0)).map((e) => [e.source.collectorId, e.line.toString()])).toEqual([['test-collector', 'one']]);
  });

  it('keeps the lines of several files in one chunk, each with its own range', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('a.log'), 'a1\na2\n');
    writeFileSync(fx.path('b.log'), 'b1\n');
    const a = fx.tail('a.log');
    const b = fx.tail('b.log');
    await a.step(fx.builder, fx.buf);
    await b.step(fx.builder, fx.buf);
    fx.builder.seal();
    expect(fx.chunks).toHaveLength(1);
    const ranges = fx.chunks[0]?.ranges ?? [];
    expect(ranges.map((r) => [r.cursor, r.endOffset, r.lines])).toEqual([
      [a.cursor, 6, 2],
      [b.cursor, 3, 1],
    ]);
    expect(decodeEntries(fx.chunks[0]?.payload ?? Buffer.alloc(0)).map((e) => e.source.path)).toEqual([fx.path('a.log'), fx.path('a.log'), fx.path('b.log')]);
  });
});

describe('deleted files', () => {
  it('a deleted file is read to its end through the open descriptor, then finished', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('d.log'), 'kept1\n');
    const t = fx.tail('d.log');
    appendFileSync(fx.path('d.log'), 'kept2\n');
    unlinkSync(fx.path('d.log'));
    expect((await t.step(fx.builder, fx.buf)).status).toBe('data');
    expect((await t.step(fx.builder, fx.buf)).status).toBe('idle');
    expect(t.detachKind).toBe('delete');
    fx.clock.advance(2000);
    expect((await t.step(fx.builder, fx.buf)).status).toBe('finished');
    expect(fx.lines()).toEqual(['kept1', 'kept2']);
  });
});

describe('collector configuration', () => {
  const base = { COLLECTOR_REMOTE_ADDRESS: 'agg:8000', COLLECTOR_FILES: '/var/log/*.log, /srv/**/app.log' };

  it('refuses contradictory sizes, naming the variables (a default line limit is capped instead)', () => {
    const problem = (env: Record<string, string>): string => {
      try {
        loadCollectorConfig({ ...base, ...env });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      return '';
    };
    expect(problem({ COLLECTOR_BUFFER_MAX_BYTES: '64KiB', COLLECTOR_MAX_LINE_BYTES: '1MiB' })).toMatch(/COLLECTOR_MAX_LINE_BYTES: must not exceed COLLECTOR_BUFFER_MAX_BYTES/);
    expect(problem({ COLLECTOR_BUFFER_MAX_BYTES: '128MiB', COLLECTOR_MAX_INFLIGHT_BYTES: '64MiB' })).toMatch(/COLLECTOR_BUFFER_MAX_BYTES: must not exceed COLLECTOR_MAX_INFLIGHT_BYTES/);
    // A large buffer given alone: the default in-flight bound grows to hold one chunk of it.
    expect(problem({ COLLECTOR_BUFFER_MAX_BYTES: '128MiB' })).toBe('');
    expect(loadCollectorConfig({ ...base, COLLECTOR_BUFFER_MAX_BYTES: '128MiB' })).toMatchObject({ bufferMaxBytes: 128 * 1024 * 1024, maxInflightBytes: 128 * 1024 * 1024 });
    expect(problem({ COLLECTOR_BUFFER_MAX_BYTES: '64KiB' })).toBe('');
    // A small in-flight bound given alone caps the default chunk size instead of refusing to start.
    expect(problem({ COLLECTOR_MAX_INFLIGHT_BYTES: '64KiB' })).toBe('');
    expect(loadCollectorConfig({ ...base, COLLECTOR_MAX_INFLIGHT_BYTES: '64KiB' }).bufferMaxBytes).toBe(64 * 1024);
    // Poll intervals: a longest wait below the first, both given, is refused; either alone moves the other.
    expect(problem({ COLLECTOR_POLL_INTERVAL: '1s', COLLECTOR_POLL_MAX_INTERVAL: '500ms' })).toMatch(/COLLECTOR_POLL_MAX_INTERVAL: must not be below COLLECTOR_POLL_INTERVAL/);
    expect(loadCollectorConfig({ ...base, COLLECTOR_POLL_INTERVAL: '5s' })).toMatchObject({ pollIntervalMs: 5000, pollMaxIntervalMs: 5000 });
    expect(loadCollectorConfig({ ...base, COLLECTOR_POLL_MAX_INTERVAL: '100ms' })).toMatchObject({ pollIntervalMs: 100, pollMaxIntervalMs: 100 });
    expect(loadCollectorConfig(base)).toMatchObject({ pollIntervalMs: 250, pollMaxIntervalMs: 2000 });
  });

  it('applies DESIGN.md defaults and parses lists, tags and sizes', () => {
    const c = loadCollectorConfig({ ...base, COLLECTOR_TAGS: 'env=prod, team=core' });
    expect(c.files).toEqual(['/var/log/*.log', '/srv/**/app.log']);
    expect(c.tags).toEqual([
      { key: 'env', value: 'prod' },
      { key: 'team', value: 'core' },
    ]);
    expect(c.stateDir).toBe('./data/collector');
    expect(c.startAt).toBe('beginning');
    expect(c.bufferMaxBytes).toBe(1024 * 1024);
    expect(c.bufferTimeoutMs).toBe(1000);
    expect(c.maxInflightBytes).toBe(4 * 1024 * 1024);
    expect(c.maxLineBytes).toBe(1024 * 1024);
    expect(c.retryInitialDelayMs).toBe(500);
    expect(c.retryMaxDelayMs).toBe(30_000);
    expect(c.retryMaxTimes).toBeUndefined();
    expect(c.shutdownTimeoutMs).toBe(10_000);
    expect(c.metricsAddress).toBe('[::]:9465');
  });

  it('the --remote-address flag overrides the env', () => {
    expect(loadCollectorConfig(base, new Map([['--remote-address', '10.0.0.1:9000']])).remoteAddress).toEqual(['10.0.0.1:9000']);
  });

  it('names every variable at fault in one error', () => {
    let err: unknown;
    try {
      loadCollectorConfig({ COLLECTOR_FILES: ' , ', COLLECTOR_START_AT: 'middle', COLLECTOR_TAGS: 'novalue', COLLECTOR_MULTILINE_START_PATTERN: '(' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as ConfigError).message;
    for (const v of ['COLLECTOR_REMOTE_ADDRESS', 'COLLECTOR_FILES', 'COLLECTOR_START_AT', 'COLLECTOR_TAGS', 'COLLECTOR_MULTILINE_START_PATTERN']) expect(msg).toContain(v);
  });

  it('refuses half-configured TLS', () => {
    expect(() => loadCollectorConfig({ ...base, COLLECTOR_TLS: '1', COLLECTOR_TLS_KEY: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----' })).toThrow(/give both/);
  });

  it('reads TLS material only when COLLECTOR_TLS is on (paths of unmounted secrets are fine while it is off)', () => {
    const paths = { COLLECTOR_TLS_CERTIFICATE: '/nonexistent/c.crt', COLLECTOR_TLS_KEY: '/nonexistent/c.key', COLLECTOR_TLS_CA_CERTIFICATE: '/nonexistent/ca.crt' };
    const off = loadCollectorConfig({ ...base, ...paths });
    expect([off.tls, off.tlsCertificate, off.tlsKey, off.tlsCaCertificate]).toEqual([false, undefined, undefined, undefined]);
    expect(() => loadCollectorConfig({ ...base, ...paths, COLLECTOR_TLS: '1' })).toThrow(
      /COLLECTOR_TLS_CERTIFICATE: cannot read certificate file "\/nonexistent\/c\.crt" \(ENOENT\).*COLLECTOR_TLS_KEY: .*COLLECTOR_TLS_CA_CERTIFICATE: /,
    );
    expect(loadCollectorConfig({ ...base, COLLECTOR_TLS: '1', COLLECTOR_TLS_CA_CERTIFICATE: FIXTURE_CERT }).tlsCaCertificate?.toString()).toBe(FIXTURE_CERT);
    expect(() =>
      loadCollectorConfig({ ...base, COLLECTOR_TLS: '1', COLLECTOR_TLS_CERTIFICATE: FIXTURE_CERT, COLLECTOR_TLS_KEY: FIXTURE_OTHER_KEY }),
    ).toThrow(/COLLECTOR_TLS_KEY: the private key does not match the certificate in COLLECTOR_TLS_CERTIFICATE/);
  });
});

describe('chunk limits', () => {
  it('never seals a chunk over its byte or entry bound: it seals before a line that would not fit, with exact ranges', async () => {
    fx = new TailFixture(undefined, 2048);
    fx.builder.setLimits(2048, 7);
    const lines = Array.from({ length: 40 }, (_, i) => `${i} ${'x'.repeat((i * 37) % 300)}`);
    writeFileSync(fx.path('a.log'), lines.map((l) => `${l}\n`).join(''));
    const t = fx.tail('a.log');
    while ((await t.step(fx.builder, fx.buf)).status === 'data');
    fx.builder.seal();
    expect(fx.chunks.length).toBeGreaterThan(5);
    let end = 0;
    for (const c of fx.chunks) {
      expect(c.payload.length).toBeLessThanOrEqual(2048);
      expect(c.entryCount).toBeLessThanOrEqual(7);
      // Each chunk's range starts where the previous one ended and covers exactly its lines.
      const entries = decodeEntries(c.payload);
      expect(entries[0]?.offset).toBe(end);
      const last = entries.at(-1);
      end = (last?.offset ?? 0) + (last?.line.length ?? 0) + 1;
      expect(c.ranges.map((r) => [r.endOffset, r.lines])).toEqual([[end, entries.length]]);
    }
    expect(fx.chunks.flatMap((c) => decodeEntries(c.payload).map((e) => e.line.toString()))).toEqual(lines);
  });
});

import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { generateTestCerts } from '../helpers/certs.js';
import type { TestCerts } from '../helpers/certs.js';
import { checkDelivery, readDelivered } from '../helpers/collector-delivery.js';
import { LogWriter } from '../helpers/collector-log-writer.js';
import { FAST_COLLECTOR_ENV, runCollector, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { tryWaitFor, waitFor } from '../helpers/wait-for.js';

/**
 * The collector program across stops and starts: truncation while stopped, corrupt checkpoints,
 * SIGTERM drain, COLLECTOR_START_AT, the --remote-address flag, mTLS, /metrics, --help and bad
 * configuration. One real aggregator (JSON file emitter) serves the whole file.
 */
let dir: string;
let out: string;
let aggregator: AggregatorProcess;
let collector: CollectorProcess | undefined;
let certs: TestCerts;
let caseNo = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mc-restart-'));
  out = join(dir, 'out.jsonl');
  aggregator = await startAggregator({
    env: {
      AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
      AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
      AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms',
    },
  });
});

afterAll(async () => {
  await aggregator.kill();
  await certs?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await collector?.kill();
  collector = undefined;
});

/** A fresh logs dir, state dir and writer for one case; lines are tagged with the case to keep cases apart. */
function freshCase(): { logs: string; state: string; writer: LogWriter; env: Record<string, string> } {
  const c = join(dir, `case${++caseNo}`);
  const logs = join(c, 'logs');
  mkdirSync(logs, { recursive: true });
  const state = join(c, 'state');
  return {
    logs,
    state,
    writer: new LogWriter(logs, `case${caseNo}`),
    env: { ...FAST_COLLECTOR_ENV, COLLECTOR_REMOTE_ADDRESS: aggregator.address, COLLECTOR_FILES: join(logs, '*.log'), COLLECTOR_STATE_DIR: state },
  };
}

/** Waits until every written line has arrived; returns the report over this case's lines. */
async function delivered(written: readonly string[]): Promise<ReturnType<typeof checkDelivery>> {
  const want = new Set(written);
  const mine = (): ReturnType<typeof readDelivered> => readDelivered(out).filter((d) => want.has(d.line));
  await tryWaitFor(() => new Set(mine().map((d) => d.line)).size >= want.size, { timeoutMs: 20_000, intervalMs: 100, what: 'every written line delivered' });
  return checkDelivery(written, mine());
}

describe('collector program', () => {
  it('detects truncation and regrowth while stopped, and reads the new content from the start', async () => {
    const c = freshCase();
    c.writer.append('app', 100);
    collector = await startCollector(c.env);
    expect((await delivered(c.writer.written)).missing).toEqual([]);
    expect(await collector.stop()).toBe(0);
    // Truncate and regrow past the old offset while the collector is away.
    const before = statSync(c.writer.path('app')).size;
    truncateSync(c.writer.path('app'), 0);
    c.writer.append('app', 300);
    expect(statSync(c.writer.path('app')).size).toBeGreaterThan(before);
    collector = await startCollector(c.env);
    const report = await delivered(c.writer.written);
    expect(report.missing).toEqual([]);
    expect(report.duplicates).toBe(0);
    expect(await collector.metric('mega_collector_truncations_total')).toBe(1);
    await collector.waitForLog((r) => typeof r.msg === 'string' && r.msg.includes('truncated while the collector was away'));
  });

  it('SIGTERM drains: exits 0 with everything read acknowledged and checkpointed', async () => {
    const c = freshCase();
    collector = await startCollector({ ...c.env, COLLECTOR_BUFFER_TIMEOUT: '10s' });
    c.writer.append('app', 2000);
    await tryWaitFor(async () => (await collector?.metric('mega_collector_lines_read_total')) === 2000, { timeoutMs: 10_000, intervalMs: 20, what: '2000 lines read' });
    // Whatever is still unacknowledged at SIGTERM is waited for before the exit.
    expect(await collector.stop()).toBe(0);
    expect(collector.logs.some((l) => l.includes('drained'))).toBe(true);
    const doc = JSON.parse(readFileSync(join(c.state, 'checkpoints.json'), 'utf8')) as { records: Array<{ offset: number }> };
    expect(doc.records[0]?.offset).toBe(statSync(c.writer.path('app')).size);
    expect((await delivered(c.writer.written)).missing).toEqual([]);
  });

  it('sends at once when every file is read to its end, without waiting for COLLECTOR_BUFFER_TIMEOUT', async () => {
    const c = freshCase();
    collector = await startCollector({ ...c.env, COLLECTOR_BUFFER_TIMEOUT: '1h' });
    c.writer.append('app', 3);
    // Waiting an hour would be the chunk timer; a caught-up reader seals what it has.
    await waitFor(async () => (await collector?.metric('mega_collector_lines_acknowledged_total')) === 3, { timeoutMs: 15_000, intervalMs: 50, what: '3 lines acknowledged' });
    expect((await delivered(c.writer.written)).missing).toEqual([]);
  });

  it('a corrupt checkpoint file is reported and recovered from without loss, whatever COLLECTOR_START_AT says', async () => {
    const c = freshCase();
    c.writer.append('app', 50);
    collector = await startCollector(c.env);
    await delivered(c.writer.written);
    expect(await collector.stop()).toBe(0);
    c.writer.append('app', 50);
    writeFileSync(join(c.state, 'checkpoints.json'), '{"version":1,"crc":1,"rec');
    writeFileSync(join(c.state, 'checkpoints.json.prev'), 'garbage');
    collector = await startCollector({ ...c.env, COLLECTOR_START_AT: 'end' });
    const report = await delivered(c.writer.written);
    expect(report.missing).toEqual([]);
    expect(await collector.metric('mega_collector_checkpoint_errors_total')).toBe(1);
    expect(collector.logs.some((l) => l.includes('checkpoint file unusable'))).toBe(true);
  });

  it('COLLECTOR_START_AT=end skips what files held at first start, and later restarts resume from the checkpoint', async () => {
    const c = freshCase();
    c.writer.append('old', 30);
    const skipped = [...c.writer.written];
    collector = await startCollector({ ...c.env, COLLECTOR_START_AT: 'end' });
    const firstId = (await collector.waitForLog((r) => r.msg === 'started')).collectorId;
    c.writer.append('old', 10);
    const fresh = c.writer.written.slice(skipped.length);
    expect((await delivered(fresh)).missing).toEqual([]);
    expect(await collector.stop()).toBe(0);
    c.writer.append('old', 10);
    collector = await startCollector({ ...c.env, COLLECTOR_START_AT: 'end' });
    // COLLECTOR_ID: generated once, kept in the state dir.
    expect((await collector.waitForLog((r) => r.msg === 'started')).collectorId).toBe(firstId);
    expect(readFileSync(join(c.state, 'collector-id'), 'utf8').trim()).toBe(firstId);
    const later = c.writer.written.slice(skipped.length);
    const report = await delivered(later);
    expect(report.missing).toEqual([]);
    expect(report.duplicates).toBe(0);
    expect(readDelivered(out).filter((d) => skipped.includes(d.line))).toEqual([]);
  });

  it('--remote-address overrides the env; /metrics has the per-file and collector series', async () => {
    const c = freshCase();
    c.writer.append('m', 20);
    collector = await startCollector({ ...c.env, COLLECTOR_REMOTE_ADDRESS: '127.0.0.1:1', COLLECTOR_TAGS: 'env=test,team=logs' }, ['--remote-address', aggregator.address]);
    expect((await delivered(c.writer.written)).missing).toEqual([]);
    // Tags from COLLECTOR_TAGS plus the host name travel with every entry.
    const records = readFileSync(out, 'utf8').split('\n').filter((l) => l.includes(c.writer.written[0] as string));
    const tags = (JSON.parse(records[0] as string) as { tags: Record<string, string> }).tags;
    expect(tags).toEqual({ env: 'test', team: 'logs', host: hostname() });
    const path = c.writer.path('m');
    await tryWaitFor(async () => (await collector?.metric('mega_collector_lines_acknowledged_total', { path })) === 20, { timeoutMs: 5000, intervalMs: 50, what: '20 lines of the file acknowledged' });
    expect(await collector.metric('mega_collector_lines_read_total', { path })).toBe(20);
    expect(await collector.metric('mega_collector_lines_acknowledged_total', { path })).toBe(20);
    expect(await collector.metric('mega_collector_read_bytes_total', { path })).toBeGreaterThan(0);
    expect(await collector.metric('mega_collector_acknowledged_bytes_total', { path })).toBe(await collector.metric('mega_collector_read_bytes_total', { path }));
    expect(await collector.metric('mega_collector_open_files')).toBe(1);
    await tryWaitFor(async () => ((await collector?.metric('mega_collector_checkpoint_writes_total')) ?? 0) > 0, { timeoutMs: 5000, intervalMs: 50, what: 'a checkpoint written' });
    const text = await collector.metricsText();
    for (const series of [
      `mega_collector_behind_bytes{path="${path}"} 0`,
      'mega_collector_rotations_total{kind="rename"}',
      'mega_collector_rotations_total{kind="copytruncate"}',
      'mega_collector_reconnects_total',
      'mega_collector_checkpoint_writes_total',
      'mega_collector_truncations_total',
      'mega_collector_chunks_sent_total',
      'mega_collector_chunks_acknowledged_total',
      'mega_collector_chunks_rejected_total{reason="invalid"}',
      'mega_collector_lines_split_total',
      'mega_collector_old_space_collections_total',
    ]) {
      expect(text).toContain(series);
    }
  });

  it('splits over-long lines into flagged pieces, counted, nothing dropped', async () => {
    const c = freshCase();
    const long = `case${caseNo}-long-${'L'.repeat(2500)}`;
    appendFileSync(c.writer.path('s'), `${long}\nshort-case${caseNo}\n`);
    collector = await startCollector({ ...c.env, COLLECTOR_MAX_LINE_BYTES: '1000B' });
    await tryWaitFor(() => readDelivered(out).some((d) => d.line === `short-case${caseNo}`), { timeoutMs: 10_000, intervalMs: 50, what: 'the short line after the long one delivered' });
    const pieces = readDelivered(out).filter((d) => d.line.startsWith(`case${caseNo}-long-`) || /^L+$/.test(d.line));
    expect(pieces.map((p) => p.line).join('')).toBe(long);
    expect(pieces.map((p) => p.line.length)).toEqual([1000, 1000, long.length - 2000]);
    expect(await collector.metric('mega_collector_lines_split_total')).toBe(2);
  });

  it('ships over mTLS to an aggregator that requires a client certificate', async () => {
    certs = await generateTestCerts();
    const tlsOut = join(dir, 'tls-out.jsonl');
    const tlsAggregator = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'tls-spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: tlsOut, format: 'json' }),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms',
        AGGREGATOR_TLS: '1',
        AGGREGATOR_TLS_CERTIFICATE: certs.server.certPath,
        AGGREGATOR_TLS_KEY: certs.server.keyPath,
        AGGREGATOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
      },
    });
    try {
      const c = freshCase();
      c.writer.append('tls', 20);
      collector = await startCollector({
        ...c.env,
        COLLECTOR_REMOTE_ADDRESS: `localhost:${tlsAggregator.grpcPort}`,
        COLLECTOR_TLS: '1',
        COLLECTOR_TLS_CERTIFICATE: certs.client.certPath,
        // PEM text works as well as a path.
        COLLECTOR_TLS_KEY: certs.client.key.toString(),
        COLLECTOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
      });
      await tryWaitFor(() => readDelivered(tlsOut).length >= 20, { timeoutMs: 15_000, intervalMs: 100, what: '20 lines delivered over mTLS' });
      expect(checkDelivery(c.writer.written, readDelivered(tlsOut)).missing).toEqual([]);
    } finally {
      await collector?.kill();
      await tlsAggregator.kill();
    }
  });

  it('--help, --version and one-line configuration errors', async () => {
    const help = await runCollector({}, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('COLLECTOR_REMOTE_ADDRESS (flag --remote-address)');
    expect(help.stdout).toContain('COLLECTOR_MAX_INFLIGHT_BYTES');
    const version = await runCollector({}, ['--version']);
    expect(version.stdout.trim()).toMatch(/^mega-collector \d+\.\d+\.\d+$/);
    const bad = await runCollector({ COLLECTOR_FILES: '/tmp/x/*.log', COLLECTOR_BUFFER_TIMEOUT: 'soon' });
    expect(bad.code).not.toBe(0);
    const lines = bad.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/COLLECTOR_REMOTE_ADDRESS: required/);
    expect(lines[0]).toMatch(/COLLECTOR_BUFFER_TIMEOUT/);
  });
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startProgram } from '../../support/program.js';
import { readmeMetricNames } from '../helpers/readme-metrics.js';
import type { RunningProgram } from '../../support/program.js';

/**
 * Every query of deploy/grafana/mega-collector.json, and every metric the README's table lists, names a
 * metric the running programs export.
 */
const dashboard = JSON.parse(readFileSync('deploy/grafana/mega-collector.json', 'utf8')) as {
  panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
};
const dir = mkdtempSync(join(tmpdir(), 'mc-grafana-'));
const running: RunningProgram[] = [];

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop(5000)));
  rmSync(dir, { recursive: true, force: true });
});

/** Metric names a /metrics page declares, with the series a histogram adds. */
async function exported(port: number): Promise<Set<string>> {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const names = new Set<string>();
  for (const m of body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
  }
  return names;
}

describe('Grafana dashboard', () => {
  it('queries only metrics that the aggregator (with the Aeron emitter) and the collector export', async () => {
    const base = { PATH: process.env.PATH, LOG_LEVEL: 'info' };
    const aggregator = await startProgram({
      script: 'dist/cmd/aggregator/main.js',
      env: {
        ...base,
        AGGREGATOR_LISTEN_ADDRESS: '127.0.0.1:0',
        AGGREGATOR_METRICS_ADDRESS: '127.0.0.1:0',
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        // The Aeron emitter registers its metrics at start-up; no receiver is needed for that. Two
        // tag-routed publications, so the router's own series (unrouted entries) is exported too.
        AGGREGATOR_AERON_CONFIGURATION: JSON.stringify([
          { channel: 'aeron:udp?endpoint=127.0.0.1:40999', stream_id: 10 },
          { channel: 'aeron:udp?endpoint=127.0.0.1:40998', stream_id: 11, tagpass: { host: ['web-*'] } },
        ]),
      },
      readyMessage: 'listening',
    });
    running.push(aggregator);
    writeFileSync(join(dir, 'a.log'), 'one line\n');
    const collector = await startProgram({
      script: 'dist/cmd/collector/main.js',
      env: {
        ...base,
        COLLECTOR_REMOTE_ADDRESS: `127.0.0.1:${String(aggregator.ready.grpcPort)}`,
        COLLECTOR_FILES: join(dir, '*.log'),
        COLLECTOR_STATE_DIR: join(dir, 'state'),
        COLLECTOR_METRICS_ADDRESS: '127.0.0.1:0',
      },
      readyMessage: 'started',
    });
    running.push(collector);

    const names = new Set([
      ...(await exported(Number(aggregator.ready.metricsPort))),
      ...(await exported(Number(collector.ready.metricsPort))),
    ]);
    const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(queries.length).toBeGreaterThan(20);
    const used = new Set<string>();
    for (const q of queries) {
      const metrics = [...q.expr.matchAll(/\b((?:mega_aggregator|mega_collector)_[a-z_]+)/g)].map((m) => m[1] as string);
      expect(metrics.length, `${q.panel}: ${q.expr}`).toBeGreaterThan(0);
      for (const name of metrics) {
        expect(names.has(name), `${q.panel}: ${name} is not exported`).toBe(true);
        used.add(name);
      }
    }
    // The README's metrics table.
    const documented = readmeMetricNames();
    expect(documented.length).toBeGreaterThan(30);
    for (const name of documented) expect(names.has(name), `README lists ${name}, which is not exported`).toBe(true);

    // The series the issues name are on the dashboard.
    for (const name of [
      'mega_aggregator_entries_received_total',
      'mega_aggregator_entries_acked_total',
      'mega_aggregator_entries_emitted_total',
      'mega_aggregator_entries_refused_total',
      'mega_aggregator_spool_bytes',
      'mega_aggregator_emit_retries_total',
      'mega_aggregator_notifications_total',
      'mega_collector_lines_read_total',
      'mega_collector_lines_acknowledged_total',
      'mega_collector_behind_bytes',
      'mega_collector_open_files',
      'mega_collector_rotations_total',
      'mega_collector_reconnects_total',
      'mega_collector_checkpoint_writes_total',
      'mega_aggregator_aeron_messages_sent_total',
    ]) {
      expect(used.has(name), name).toBe(true);
    }
  }, 60_000);
});

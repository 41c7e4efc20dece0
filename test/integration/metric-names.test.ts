import { readFileSync } from 'node:fs';
import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { BatchCause } from '../../src/batcher/batcher.js';
import { parseAeronConfiguration } from '../../src/config/aeron-config.js';
import { AERON_METRICS, AeronEmitter } from '../../src/emitters/aeron-emitter.js';
import { AeronRouter } from '../../src/emitters/aeron-router.js';
import type { NotifyAction, NotifyOutcome } from '../../src/emitters/pagerduty-notifier.js';
import { BATCH_CAUSES, NOTIFY_ACTIONS, NOTIFY_OUTCOMES, REFUSE_REASONS, createAggregatorMetrics } from '../../src/telemetry/aggregator-metrics.js';
import { createCollectorMetrics } from '../../src/telemetry/collector-metrics.js';
import { fileReopenCounter } from '../../src/emitters/file-emitter-metrics.js';
import { createDedupeMetrics } from '../../src/telemetry/dedupe-metrics.js';
import { createTlsHandshakeFailures } from '../../src/telemetry/tls-metrics.js';
import { readmeMetricNames } from '../helpers/readme-metrics.js';

/**
 * The metric names follow Prometheus conventions, labelled counters exist at zero for every known label
 * value, and every name the dashboard, the alert rules and the README use is one the programs register.
 */

/** The renames of the Prometheus-conventions change (README "Changelog" lists the same pairs). */
const RENAMED: Readonly<Record<string, string>> = {
  mega_collector_bytes_read_total: 'mega_collector_read_bytes_total',
  mega_collector_bytes_acknowledged_total: 'mega_collector_acknowledged_bytes_total',
  mega_collector_bytes_behind: 'mega_collector_behind_bytes',
  mega_aggregator_chunk_bytes_received_total: 'mega_aggregator_received_bytes_total',
  aeron_publisher_messages_sent: 'mega_aggregator_aeron_messages_sent_total',
  aeron_publisher_messages_dropped: 'mega_aggregator_aeron_messages_dropped_total',
  aeron_publisher_bytes_transferred: 'mega_aggregator_aeron_transferred_bytes_total',
  aeron_publisher_backpressure_errors: 'mega_aggregator_aeron_backpressure_errors_total',
  aeron_publisher_connection_errors: 'mega_aggregator_aeron_connection_errors_total',
  aeron_publisher_retry_attempts: 'mega_aggregator_aeron_retry_attempts_total',
};

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// Compile-time: the label sets pre-created in aggregator-metrics.ts are the ones the code emits.
const causesMatch: Same<(typeof BATCH_CAUSES)[number], BatchCause> = true;
const actionsMatch: Same<(typeof NOTIFY_ACTIONS)[number], NotifyAction> = true;
const outcomesMatch: Same<(typeof NOTIFY_OUTCOMES)[number], NotifyOutcome> = true;

const OUR_NAME = /\b((?:mega_aggregator|mega_collector)_[a-z_]+|aeron_publisher_[a-z_]+)/g;

async function snapshot(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
  const aggregator = createAggregatorMetrics({ defaultMetrics: false });
  const collector = createCollectorMetrics({ defaultMetrics: false });
  const aeron = parseAeronConfiguration('{"channel": "aeron:udp?endpoint=127.0.0.1:40123", "stream_id": 10}');
  // Constructing the emitter registers its counters; nothing is opened before start() or emit().
  new AeronEmitter(aeron, { registry: aggregator.registry });
  // Several tag-routed publications add the router's unrouted-entries counter.
  new AeronRouter({ publications: [aeron] }, { registry: aggregator.registry });
  // Every aggregator registers the file emitter's reopen counter (src/emitters/emitter-registry.ts).
  fileReopenCounter(aggregator.registry);
  // And the refused-handshake counter of its gRPC listener (src/aggregator/aggregator.ts).
  createTlsHandshakeFailures(aggregator.registry);
  // And the exactly-once counters (src/telemetry/dedupe-metrics.ts).
  createDedupeMetrics(aggregator.registry);
  const all = async (r: Registry) => (await r.getMetricsAsJSON()) as MetricObjectWithValues<MetricValue<string>>[];
  return [...(await all(aggregator.registry)), ...(await all(collector.registry))];
}

async function registeredNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await snapshot()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

function namesIn(text: string): string[] {
  return [...new Set([...text.matchAll(OUR_NAME)].map((m) => m[1] as string))];
}

const dashboard = JSON.parse(readFileSync('deploy/grafana/mega-collector.json', 'utf8')) as {
  panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
};
const alertsText = readFileSync('deploy/prometheus/alerts.yml', 'utf8');
const alerts = parse(alertsText) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
const rules = alerts.groups.flatMap((g) => g.rules);

describe('metric names', () => {
  it('follow Prometheus conventions: our prefix, unit last, every counter ends in _total and nothing else does', async () => {
    expect([causesMatch, actionsMatch, outcomesMatch]).toEqual([true, true, true]);
    const metrics = await snapshot();
    expect(metrics.length).toBeGreaterThan(35);
    for (const m of metrics) {
      expect(m.name, m.name).toMatch(/^mega_(aggregator|collector)_[a-z][a-z_]*[a-z]$/);
      expect(m.name.endsWith('_total'), `${m.name} (${String(m.type)})`).toBe(String(m.type) === 'counter');
      // A unit may only be followed by `_total`: `read_bytes_total`, never `bytes_read_total`.
      expect(m.name, m.name).not.toMatch(/_(bytes|seconds)_(?!total$)/);
      expect(m.name, m.name).not.toMatch(/_(milliseconds|ms|kb|mb|mib|kib)(_|$)/);
    }
  });

  it('are the new names of the renamed metrics, and none of the old ones remain', async () => {
    const names = await registeredNames();
    for (const [old, renamed] of Object.entries(RENAMED)) {
      expect(names.has(old), old).toBe(false);
      expect(names.has(renamed), renamed).toBe(true);
    }
  });

  it('labelled counters with a closed label set exist at zero for every value before any event', async () => {
    const byName = new Map((await snapshot()).map((m) => [m.name, m]));
    const labels = (name: string, label: string): string[] =>
      (byName.get(name)?.values ?? []).filter((v) => v.value === 0).map((v) => String(v.labels[label])).sort();
    expect(labels('mega_aggregator_entries_refused_total', 'reason')).toEqual([...REFUSE_REASONS].sort());
    expect(labels('mega_aggregator_chunks_refused_total', 'reason')).toEqual([...REFUSE_REASONS].sort());
    expect(labels('mega_aggregator_batches_emitted_total', 'cause')).toEqual([...BATCH_CAUSES].sort());
    expect(byName.get('mega_aggregator_notifications_total')?.values.filter((v) => v.value === 0)).toHaveLength(NOTIFY_ACTIONS.length * NOTIFY_OUTCOMES.length);
    expect(labels('mega_collector_rotations_total', 'kind')).toEqual(['copytruncate', 'delete', 'rename']);
    expect(labels('mega_collector_chunks_rejected_total', 'reason')).toEqual(['invalid']);
    expect(labels('mega_collector_lines_dropped_total', 'reason')).toEqual(['invalid']);
    expect(labels('mega_collector_reconnects_total', 'reason')).toEqual(['error', 'goaway', 'rebalance', 'removed']);
    expect(labels('mega_collector_failovers_total', 'reason')).toEqual(['error', 'goaway', 'rebalance', 'removed']);
    for (const [name] of Object.values(AERON_METRICS)) {
      expect(byName.get(name)?.values, name).toEqual([{ value: 0, labels: { channel: 'aeron:udp?endpoint=127.0.0.1:40123', stream_id: '10' } }]);
    }
    // prom-client starts unlabelled counters at zero; the only counters without a series at start are
    // those keyed by an open label set (the file path).
    const withoutSeries = [...byName.values()].filter((m) => String(m.type) === 'counter' && m.values.length === 0).map((m) => m.name);
    expect(withoutSeries.sort()).toEqual(
      ['mega_collector_acknowledged_bytes_total', 'mega_collector_lines_acknowledged_total', 'mega_collector_lines_read_total', 'mega_collector_read_bytes_total'],
    );
  });

  it('the dashboard queries only registered metrics and shows every loss signal', async () => {
    const names = await registeredNames();
    const used = new Set<string>();
    for (const p of dashboard.panels) {
      for (const t of p.targets ?? []) {
        const inExpr = namesIn(t.expr);
        expect(inExpr.length, `${p.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const n of inExpr) {
          expect(names.has(n), `${p.title}: ${n} is not registered`).toBe(true);
          used.add(n);
        }
      }
    }
    for (const signal of [
      'mega_aggregator_chunks_refused_total',
      'mega_collector_chunks_rejected_total',
      'mega_collector_lines_dropped_total',
      'mega_collector_lines_split_total',
      'mega_aggregator_entries_dead_lettered_total',
      'mega_aggregator_aeron_messages_dropped_total',
      'mega_collector_reading_paused',
      'mega_aggregator_aeron_backpressure_errors_total',
    ]) {
      expect(used.has(signal), signal).toBe(true);
    }
    const ids = dashboard.panels.map((p) => (p as unknown as { id: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('the alert rules (expressions and texts) name only registered metrics and cover every loss signal', async () => {
    const names = await registeredNames();
    const mentioned = namesIn(alertsText);
    expect(mentioned.length).toBeGreaterThan(10);
    for (const n of mentioned) expect(names.has(n), `alerts.yml: ${n} is not registered`).toBe(true);
    const alertFor = (metric: string): string[] => rules.filter((r) => r.expr.includes(metric)).map((r) => r.alert);
    for (const signal of [
      'mega_aggregator_chunks_refused_total{reason="invalid"}',
      'mega_aggregator_chunks_refused_total{reason="spool_full"}',
      'mega_aggregator_chunks_refused_total{reason="spool_error"}',
      'mega_collector_chunks_rejected_total',
      'mega_collector_lines_dropped_total',
      'mega_collector_lines_split_total',
      'mega_aggregator_entries_dead_lettered_total',
      'mega_collector_reading_paused',
      'mega_aggregator_aeron_backpressure_errors_total',
    ]) {
      expect(alertFor(signal), signal).not.toEqual([]);
    }
    const alertNames = rules.map((r) => r.alert);
    expect(new Set(alertNames).size).toBe(alertNames.length);
  });

  it('the README metrics table names only registered metrics and its changelog lists every rename', async () => {
    const readme = readFileSync('README.md', 'utf8');
    const names = await registeredNames();
    const documented = readmeMetricNames(readme);
    expect(documented.length).toBeGreaterThan(35);
    for (const n of documented) expect(names.has(n), `README lists ${n}, which is not registered`).toBe(true);
    // Every registered metric is documented.
    for (const n of names) if (!/_(bucket|sum|count)$/.test(n)) expect(documented, n).toContain(n);

    const changelog = readme.split('\n## Changelog')[1]?.split('\n## ')[0] ?? '';
    for (const [old, renamed] of Object.entries(RENAMED)) expect(changelog).toContain(`| \`${old}\` | \`${renamed}\` |`);
    // Outside the changelog, no old name is used.
    const rest = readme.replace(changelog, '');
    for (const old of Object.keys(RENAMED)) expect(rest.includes(old), `README still uses ${old}`).toBe(false);
  });
});

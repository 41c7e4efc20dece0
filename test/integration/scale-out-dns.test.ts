import { afterEach, describe, expect, it } from 'vitest';
import { metricValue } from '../../support/metrics-text.js';
import { startDnsServer } from '../helpers/dns-server.js';
import type { TestDnsServer } from '../helpers/dns-server.js';
import { Fleet } from '../helpers/scale-out-fleet.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * A DNS name with several addresses, followed as its answer changes (a Kubernetes headless Service as
 * pods come and go). Three aggregators listen on the loopback addresses 127.0.0.2-4 (one port); a real
 * DNS server on a loopback UDP port answers for the name, and the collectors ask it through
 * COLLECTOR_DNS_SERVERS. Chosen over an /etc/hosts entry: it needs no root and nothing to restore, so
 * it runs the same in a fresh CI container, and the name goes through a real resolver (c-ares).
 */
let fleet: Fleet | undefined;
let dns: TestDnsServer | undefined;

afterEach(async () => {
  await fleet?.close();
  await dns?.close();
  fleet = undefined;
  dns = undefined;
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const NAME = 'aggregators.test';

describe('a DNS name with several addresses', () => {
  it('is resolved again: collectors leave an address removed from the answer without loss or duplicates, and spread over the new ones', async () => {
    const f = new Fleet();
    fleet = f;
    dns = await startDnsServer();
    const first = await f.addAggregator('127.0.0.2');
    const port = Number(first.listen.split(':')[1]);
    await Promise.all([f.addAggregator('127.0.0.3', port), f.addAggregator('127.0.0.4', port)]);
    dns.set(NAME, ['127.0.0.2']);
    const env = { COLLECTOR_DNS_SERVERS: dns.address, COLLECTOR_RESOLVE_INTERVAL: '500ms' };
    await Promise.all([1, 2, 3, 4].map(() => f.addCollector(`${NAME}:${port}`, env)));
    f.startWriting();
    await sleep(1500);
    for (const c of f.collectors) expect(await f.connectedTo(c)).toBe(`127.0.0.2:${port}`);
    expect(dns.queries(NAME)).toBeGreaterThanOrEqual(4);

    // The pod at 127.0.0.2 leaves the Service; two others join.
    dns.set(NAME, ['127.0.0.3', '127.0.0.4']);
    await waitFor(
      async () => {
        const now = await Promise.all(f.collectors.map((c) => f.connectedTo(c)));
        return now.every((a) => a === `127.0.0.3:${port}` || a === `127.0.0.4:${port}`);
      },
      { timeoutMs: 15_000, what: 'every collector to leave 127.0.0.2 for 127.0.0.3 or 127.0.0.4', intervalMs: 200 },
    );
    expect(await first.process?.metric('mega_aggregator_streams_open')).toBe(0);
    for (const c of f.collectors) {
      expect(metricValue((await c.process?.metricsText()) ?? '', 'mega_collector_failovers_total', { reason: 'removed' })).toBe(1);
    }
    await sleep(1000);
    await f.stopWriting();
    const report = await f.settle();
    const shares = f.aggregators.map((a) => new Set(f.delivered(a).map((d) => d.line)).size);
    console.log(`DNS name followed (127.0.0.2 → 127.0.0.3-4), 4 collectors: ${report.expected} lines written, ${report.delivered} delivered, lost ${report.missing.length}, duplicates ${report.duplicates}; shares ${shares.join('/')}`);
    expect(report.missing.slice(0, 5)).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.duplicates).toBe(0);
    // Lines went to the first address before the change and to the new ones after it.
    expect(shares[0]).toBeGreaterThan(0);
    // fleet-1..4 hash to both new addresses (the split is fixed by the ids).
    expect(shares[1]).toBeGreaterThan(0);
    expect(shares[2]).toBeGreaterThan(0);
  }, 120_000);
});

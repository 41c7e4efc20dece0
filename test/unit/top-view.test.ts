import { describe, expect, it } from 'vitest';
import { metricsUrl } from '../../src/cli/top.js';
import { AGGREGATOR_TOP, COLLECTOR_TOP, formatNumber, parsePrometheusText, renderFrame } from '../../src/cli/top-view.js';

const scrape = (received: number, behindName: string): string =>
  [
    '# HELP mega_aggregator_entries_received_total x',
    '# TYPE mega_aggregator_entries_received_total counter',
    `mega_aggregator_entries_received_total ${received}`,
    'mega_aggregator_spool_bytes 1048576',
    'aeron_publisher_messages_sent{channel="aeron:udp?endpoint=h:1",stream_id="10"} 40',
    `${behindName}{path="/var/log/a.log"} 100`,
    `${behindName}{path="/var/log/b \\"q\\".log"} 24`,
  ].join('\n');

describe('top view', () => {
  it('parses Prometheus text with labels and escaped quotes', () => {
    const s = parsePrometheusText(scrape(5, 'mega_collector_behind_bytes'));
    expect(s.get('mega_aggregator_entries_received_total')).toEqual([{ labels: {}, value: 5 }]);
    expect(s.get('mega_collector_behind_bytes')?.[1]?.labels.path).toBe('/var/log/b "q".log');
  });

  it('renders rates over the elapsed time and gauges as values', () => {
    const lines = renderFrame({
      title: 't',
      layout: AGGREGATOR_TOP,
      previous: parsePrometheusText(scrape(100, 'x')),
      current: parsePrometheusText(scrape(2100, 'x')),
      elapsedSeconds: 2,
    }).join('\n');
    expect(lines).toMatch(/lines in \(received\) +1000 \/s/);
    expect(lines).toMatch(/spool bytes +1\.0 MiB/);
    expect(lines).toMatch(/open streams +-/);
    expect(lines).toMatch(/aeron:udp\?endpoint=h:1 10 {2}0 \/s {2}\(total 40\)/);
  });

  it('reads either metric name of a renamed metric', () => {
    for (const name of ['mega_collector_behind_bytes', 'mega_collector_bytes_behind']) {
      const lines = renderFrame({ title: 't', layout: COLLECTOR_TOP, previous: undefined, current: parsePrometheusText(scrape(1, name)), elapsedSeconds: 0 }).join('\n');
      expect(lines).toMatch(/behind \(lag\) +124 B/);
      expect(lines).toMatch(/lines in \(read\) +-/);
    }
  });

  it('says when the endpoint cannot be read', () => {
    expect(renderFrame({ title: 't', layout: COLLECTOR_TOP, previous: undefined, current: undefined, elapsedSeconds: 0, error: 'ECONNREFUSED' }).join('\n')).toContain(
      'cannot read metrics: ECONNREFUSED',
    );
  });

  it('formats numbers and finds the local metrics URL of a wildcard listen address', () => {
    expect(formatNumber(1536, 'bytes')).toBe('1.5 KiB');
    expect(formatNumber(25_000)).toBe('25.0k');
    expect(metricsUrl('[::]:9464')).toBe('http://127.0.0.1:9464/metrics');
    expect(metricsUrl('[::1]:9464')).toBe('http://[::1]:9464/metrics');
    expect(metricsUrl('10.0.0.5:9465')).toBe('http://10.0.0.5:9465/metrics');
  });
});

import { parsePrometheusText } from '../src/cli/top-view.js';

/**
 * Reading our programs' /metrics in tests, benchmarks and the demo, through the one Prometheus text
 * parser of the project (the one `top` uses, src/cli/top-view.ts).
 */

/** The sum of a metric's samples in a Prometheus text page: all label sets, or those carrying `labels`. */
export function metricValue(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let total = 0;
  for (const sample of parsePrometheusText(text).get(name) ?? []) {
    if (Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) total += sample.value;
  }
  return total;
}

/** Scrapes http://127.0.0.1:<port>/metrics and sums one metric (see `metricValue`). */
export async function scrapeMetric(port: number, name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return metricValue(await res.text(), name, labels);
}

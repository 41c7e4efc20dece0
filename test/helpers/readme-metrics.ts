import { readFileSync } from 'node:fs';

/**
 * The metric names the README's "Metrics" table lists (first column). A cell may shorten its siblings
 * to `_suffix` after a full name: `mega_aggregator_chunks_received_total`, `_chunks_acked_total`.
 */
export function readmeMetricNames(readme = readFileSync('README.md', 'utf8')): string[] {
  const table = readme.split('\n## Metrics')[1]?.split('\n## ')[0] ?? '';
  const documented: string[] = [];
  for (const row of table.split('\n').filter((l) => l.startsWith('| `'))) {
    const cell = row.split(' | ')[0] as string;
    const names = [...cell.matchAll(/`([a-z_]+)/g)].map((m) => m[1] as string);
    const prefix = /^(mega_aggregator_aeron|mega_aggregator|mega_collector)/.exec(names[0] ?? '')?.[1] ?? '';
    for (const n of names) documented.push(n.startsWith('_') ? prefix + n : n);
  }
  return documented;
}

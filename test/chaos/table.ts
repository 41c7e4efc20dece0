import type { ChaosRow } from './row.js';

/** Formats chaos rows as the Markdown table the README shows. */
export const TABLE_HEADER = ['scenario', 'runs', 'written', 'delivered', 'lost', 'duplicated', 'changed', 'window-lost', 'result'] as const;

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

export function formatTable(rows: readonly ChaosRow[]): string {
  const lines = [`| ${TABLE_HEADER.join(' | ')} |`, `| ${TABLE_HEADER.map((h) => (h === 'scenario' || h === 'result' ? '---' : '---:')).join(' | ')} |`];
  for (const r of rows) {
    const t = r.tally;
    const notRun = r.result.startsWith('not run');
    const n = (v: number): string => (notRun ? '-' : String(v));
    const result = r.note === '' ? r.result : `${r.result} (${r.note})`;
    lines.push(
      `| ${cell(r.scenario)} | ${r.runs} | ${n(t.written)} | ${n(t.delivered)} | ${n(t.lost)} | ${n(t.duplicated)} | ${n(t.changed)} | ${n(t.windowLost)} | ${cell(result)} |`,
    );
  }
  return lines.join('\n');
}

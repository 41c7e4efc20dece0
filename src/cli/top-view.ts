/**
 * The pure half of `top`: parse a Prometheus text scrape, and render one frame from two scrapes
 * (rates are the difference over the elapsed time). Metric names are looked up through a list of
 * candidates per row, so the view works with the names before and after the Prometheus-conventions
 * renames (e.g. mega_collector_bytes_behind → mega_collector_behind_bytes).
 */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export type Scrape = ReadonlyMap<string, readonly Sample[]>;

export function parsePrometheusText(text: string): Scrape {
  const out = new Map<string, Sample[]>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1');
    const value = Number(m[3]);
    if (Number.isNaN(value)) continue;
    const name = m[1] as string;
    const list = out.get(name) ?? [];
    list.push({ labels, value });
    out.set(name, list);
  }
  return out;
}

export interface TopRow {
  readonly label: string;
  /** Candidate metric names, first present wins. */
  readonly names: readonly string[];
  /** rate: per second between scrapes; value: the current sum. */
  readonly show: 'rate' | 'value';
  readonly unit?: 'bytes';
}

export interface TopLayout {
  readonly rows: readonly TopRow[];
  /** One line per label set of this metric (e.g. per Aeron publication), with its rate. */
  readonly perSeries?: { readonly title: string; readonly names: readonly string[]; readonly labels: readonly string[] };
}

function find(scrape: Scrape, names: readonly string[]): readonly Sample[] | undefined {
  for (const name of names) {
    const samples = scrape.get(name);
    if (samples !== undefined) return samples;
  }
  return undefined;
}

const sum = (samples: readonly Sample[]): number => samples.reduce((a, s) => a + s.value, 0);

export function formatNumber(n: number, unit?: 'bytes'): string {
  if (unit === 'bytes') {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
  }
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export interface FrameInput {
  readonly title: string;
  readonly layout: TopLayout;
  readonly current: Scrape | undefined;
  readonly previous: Scrape | undefined;
  readonly elapsedSeconds: number;
  /** Why the last scrape failed, if it did. */
  readonly error?: string;
}

/** The frame as lines (no escape codes; the caller clears the screen). */
export function renderFrame(input: FrameInput): string[] {
  const lines = [input.title, ''];
  if (input.error !== undefined) lines.push(`  cannot read metrics: ${input.error}`, '');
  const { current, previous } = input;
  if (current === undefined) return [...lines, '  waiting for the first scrape ...'];
  const width = Math.max(...input.layout.rows.map((r) => r.label.length));
  for (const row of input.layout.rows) {
    const now = find(current, row.names);
    let text: string;
    if (now === undefined) text = '-';
    else if (row.show === 'value') text = formatNumber(sum(now), row.unit);
    else {
      const before = previous === undefined ? undefined : find(previous, row.names);
      text =
        before === undefined || input.elapsedSeconds <= 0
          ? '...'
          : `${formatNumber(Math.max(0, sum(now) - sum(before)) / input.elapsedSeconds, row.unit)}${row.unit === 'bytes' ? '/s' : ' /s'}`;
    }
    lines.push(`  ${row.label.padEnd(width)}  ${text}`);
  }
  const per = input.layout.perSeries;
  if (per !== undefined) {
    const series = find(current, per.names) ?? [];
    lines.push('', `  ${per.title}${series.length === 0 ? ': none' : ''}`);
    const before = previous === undefined ? undefined : find(previous, per.names);
    for (const s of series) {
      const key = per.labels.map((l) => s.labels[l] ?? '').join(' ');
      const old = before?.find((b) => per.labels.every((l) => b.labels[l] === s.labels[l]));
      const rate = old === undefined || input.elapsedSeconds <= 0 ? '...' : `${formatNumber(Math.max(0, s.value - old.value) / input.elapsedSeconds)} /s`;
      lines.push(`    ${key}  ${rate}  (total ${formatNumber(s.value)})`);
    }
  }
  lines.push('', '  q or Ctrl-C to quit');
  return lines;
}

export const AGGREGATOR_TOP: TopLayout = {
  rows: [
    { label: 'lines in (received)', names: ['mega_aggregator_entries_received_total'], show: 'rate' },
    { label: 'lines acknowledged', names: ['mega_aggregator_entries_acked_total'], show: 'rate' },
    { label: 'lines out (emitted)', names: ['mega_aggregator_entries_emitted_total'], show: 'rate' },
    { label: 'bytes in', names: ['mega_aggregator_received_bytes_total', 'mega_aggregator_chunk_bytes_received_total'], show: 'rate', unit: 'bytes' },
    { label: 'open streams', names: ['mega_aggregator_streams_open'], show: 'value' },
    { label: 'spool bytes', names: ['mega_aggregator_spool_bytes'], show: 'value', unit: 'bytes' },
    { label: 'spool pending entries (lag)', names: ['mega_aggregator_spool_pending_entries'], show: 'value' },
    { label: 'emit retries', names: ['mega_aggregator_emit_retries_total'], show: 'value' },
    { label: 'dead letters', names: ['mega_aggregator_entries_dead_lettered_total'], show: 'value' },
    { label: 'entries refused', names: ['mega_aggregator_entries_refused_total'], show: 'value' },
    { label: 'TLS handshakes refused', names: ['mega_aggregator_tls_handshake_failures_total'], show: 'value' },
  ],
  perSeries: {
    title: 'Aeron publications (channel stream: messages/s)',
    names: ['mega_aggregator_aeron_messages_sent_total', 'aeron_publisher_messages_sent_total', 'aeron_publisher_messages_sent'],
    labels: ['channel', 'stream_id'],
  },
};

export const COLLECTOR_TOP: TopLayout = {
  rows: [
    { label: 'lines in (read)', names: ['mega_collector_lines_read_total'], show: 'rate' },
    { label: 'lines out (acknowledged)', names: ['mega_collector_lines_acknowledged_total'], show: 'rate' },
    { label: 'bytes read', names: ['mega_collector_read_bytes_total', 'mega_collector_bytes_read_total'], show: 'rate', unit: 'bytes' },
    { label: 'behind (lag)', names: ['mega_collector_behind_bytes', 'mega_collector_bytes_behind'], show: 'value', unit: 'bytes' },
    { label: 'in flight', names: ['mega_collector_inflight_bytes'], show: 'value', unit: 'bytes' },
    { label: 'open files', names: ['mega_collector_open_files'], show: 'value' },
    { label: 'connected', names: ['mega_collector_connected'], show: 'value' },
    { label: 'reading paused', names: ['mega_collector_reading_paused'], show: 'value' },
    { label: 'reconnects (retries)', names: ['mega_collector_reconnects_total'], show: 'value' },
    { label: 'chunks rejected', names: ['mega_collector_chunks_rejected_total'], show: 'value' },
    { label: 'lines dropped', names: ['mega_collector_lines_dropped_total'], show: 'value' },
  ],
};

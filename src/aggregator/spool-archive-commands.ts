import type { AggregatorConfig } from '../config/aggregator-config.js';
import { parseGoDuration } from '../config/duration.js';
import { ConfigError } from '../errors.js';
import { listSegments } from '../spool/segment-list.js';
import type { SegmentInfo } from '../spool/segment-list.js';
import { Spool } from '../spool/spool.js';
import type { RecordPosition } from '../spool/spool-types.js';
import type { Logger } from '../telemetry/logger.js';

/**
 * `mega-aggregator spool list` and `spool purge`: the spool as an archive (issue 13). `list` reads
 * without the lock (beside a running aggregator); `purge` takes it.
 */

/** Flags of the archive sub-commands, taken out of argv before the option table parses the rest. */
export interface ArchiveFlags {
  readonly json: boolean;
  readonly before: string | undefined;
  readonly rest: string[];
}

export function takeArchiveFlags(argv: readonly string[]): ArchiveFlags {
  const isArchive = argv.includes('spool') && (argv.includes('list') || argv.includes('purge'));
  if (!isArchive) return { json: false, before: undefined, rest: [...argv] };
  let json = false;
  let before: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--json') json = true;
    else if (a === '--before') {
      before = argv[++i];
      if (before === undefined) throw new ConfigError(['--before: needs a value (a time, e.g. 2026-11-30T06:00:00Z or 24h ago as "24h", or a position SEGMENT:OFFSET)']);
    } else if (a.startsWith('--before=')) before = a.slice('--before='.length);
    else rest.push(a);
  }
  return { json, before, rest };
}

const pos = (p: RecordPosition | undefined): string => (p === undefined ? '-' : `${p.segment}:${p.offset}`);

function isoTime(ns: bigint | undefined): string {
  if (ns === undefined) return '-';
  const ms = Number(ns / 1_000_000n);
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '-' : d.toISOString();
}

/** One line per segment, columns aligned, with a header line. */
export function formatSegmentList(infos: readonly SegmentInfo[]): string {
  const rows = [
    ['segment', 'first', 'last', 'first entry time', 'last entry time', 'entries', 'bytes', 'status'],
    ...infos.map((s) => [
      String(s.segment),
      pos(s.firstPosition),
      pos(s.lastPosition),
      isoTime(s.firstEntryTimeNs),
      isoTime(s.lastEntryTimeNs),
      String(s.entries),
      String(s.bytes),
      s.status,
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] as string).length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] as number))).join('  ')).join('\n') + '\n';
}

/** One JSON object per line (times as ISO strings and as Unix nanoseconds in a string). */
export function formatSegmentListJson(infos: readonly SegmentInfo[]): string {
  return infos
    .map((s) =>
      JSON.stringify({
        segment: s.segment,
        file: s.file,
        first_position: s.firstPosition ?? null,
        last_position: s.lastPosition ?? null,
        end_position: s.endPosition,
        first_entry_time: s.firstEntryTimeNs === undefined ? null : isoTime(s.firstEntryTimeNs),
        last_entry_time: s.lastEntryTimeNs === undefined ? null : isoTime(s.lastEntryTimeNs),
        first_entry_time_unix_nano: s.firstEntryTimeNs?.toString() ?? null,
        last_entry_time_unix_nano: s.lastEntryTimeNs?.toString() ?? null,
        records: s.records,
        entries: s.entries,
        bytes: s.bytes,
        status: s.status,
        corrupt_ranges: s.corruptRanges,
      }),
    )
    .map((l) => `${l}\n`)
    .join('');
}

export async function spoolList(config: AggregatorConfig, json: boolean): Promise<string> {
  const infos = await listSegments(config.spoolDir);
  return json ? formatSegmentListJson(infos) : formatSegmentList(infos);
}

export type PurgeBound = { readonly kind: 'time'; readonly ns: bigint } | { readonly kind: 'position'; readonly position: RecordPosition };

/**
 * `--before`: a position `SEGMENT:OFFSET`, an ISO 8601 time, or a duration meaning that long ago
 * ("24h"). Throws ConfigError naming the flag.
 */
export function parsePurgeBound(text: string | undefined, nowMs: number): PurgeBound {
  if (text === undefined) throw new ConfigError(['spool purge: --before is required (a time, a duration ago such as 24h, or a position SEGMENT:OFFSET)']);
  const v = text.trim();
  const m = /^(\d+):(\d+)$/.exec(v);
  if (m !== null) return { kind: 'position', position: { segment: Number(m[1]), offset: Number(m[2]) } };
  try {
    return { kind: 'time', ns: BigInt(Math.round(nowMs - parseGoDuration(v))) * 1_000_000n };
  } catch {
    // not a duration
  }
  const ms = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new ConfigError([`--before: "${text}" is neither a position (SEGMENT:OFFSET), an ISO 8601 time (2026-11-30T06:00:00Z) nor a duration ago (24h)`]);
  }
  return { kind: 'time', ns: BigInt(ms) * 1_000_000n };
}

/** Whether a whole segment lies before the bound: its end position at or before it, or its last entry older. */
export function segmentBefore(s: SegmentInfo, bound: PurgeBound): boolean {
  if (bound.kind === 'position') {
    const p = bound.position;
    return s.segment < p.segment || (s.segment === p.segment && s.endPosition.offset <= p.offset);
  }
  return s.lastEntryTimeNs === undefined ? s.entries === 0 : s.lastEntryTimeNs < bound.ns;
}

export interface PurgeOutcome {
  readonly segments: number;
  readonly bytes: number;
}

/**
 * `mega-aggregator spool purge --before ...`: deletes retained segments (delivered, sealed) wholly before
 * the bound, ahead of AGGREGATOR_SPOOL_RETENTION; never a pending one. Takes the spool's lock (refuses
 * beside a running aggregator) and keeps every other retained segment, whatever the retention setting.
 */
export async function spoolPurge(config: AggregatorConfig, bound: PurgeBound, logger: Logger): Promise<PurgeOutcome> {
  const spool = await Spool.open({
    dir: config.spoolDir,
    maxBytes: config.spoolMaxBytes,
    segmentBytes: config.spoolSegmentBytes,
    ...(config.spoolMinFreeBytes === undefined ? {} : { minFreeBytes: config.spoolMinFreeBytes }),
    retention: config.spoolRetention ?? {},
    logger,
  });
  try {
    const picked = new Set((await listSegments(config.spoolDir)).filter((s) => segmentBefore(s, bound)).map((s) => s.segment));
    return await spool.purgeRetained((n) => picked.has(n));
  } finally {
    await spool.close();
  }
}

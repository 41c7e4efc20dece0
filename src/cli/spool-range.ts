import picomatch from 'picomatch';
import { parseArgs } from 'node:util';
import { ConfigError, errorMessage } from '../errors.js';
import type { Entry } from '../wire/entry-batch.js';

/**
 * The range and filters shared by `spool replay` and `spool export`:
 *
 *   --from TIME|POSITION   first entry (inclusive)          TIME: RFC 3339, e.g. 2026-11-30T07:00:00Z
 *   --to TIME|POSITION     end of the range (exclusive)     POSITION: SEGMENT:OFFSET[:ENTRY], as
 *   --match KEY=VALUE      entries with that tag (repeat: all must match)     `spool status` prints it
 *   --path GLOB            entries whose source path matches
 *
 * A time bound compares the entry's read time (time_unix_nano). A position bound is a spool position:
 * a record's segment and byte offset, plus optionally the index of an entry inside that record.
 */
export type RangeBound =
  | { readonly kind: 'time'; readonly unixNano: bigint; readonly text: string }
  | { readonly kind: 'position'; readonly segment: number; readonly offset: number; readonly entry: number; readonly text: string };

export interface SpoolRange {
  readonly from: RangeBound;
  readonly to?: RangeBound;
  readonly match: ReadonlyArray<{ readonly key: string; readonly value: string }>;
  readonly path?: string;
}

const POSITION = /^(\d+):(\d+)(?::(\d+))?$/;
const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

/** Parses a --from / --to value; throws ConfigError naming the flag. */
export function parseBound(flag: string, text: string): RangeBound {
  const p = POSITION.exec(text);
  if (p !== null) {
    const [segment, offset, entry] = [Number(p[1]), Number(p[2]), Number(p[3] ?? '0')];
    if (![segment, offset, entry].every(Number.isSafeInteger)) throw new ConfigError([`${flag}: position ${text} is out of range`]);
    return { kind: 'position', segment, offset, entry, text };
  }
  const t = RFC3339.exec(text);
  if (t !== null) {
    const ms = Date.parse(`${t[1]}T${t[2]}${t[4]}`);
    if (!Number.isNaN(ms)) {
      const fraction = BigInt((t[3] ?? '').padEnd(9, '0'));
      return { kind: 'time', unixNano: BigInt(ms) * 1_000_000n + fraction, text };
    }
  }
  throw new ConfigError([
    `${flag}: "${text}" is neither a time (RFC 3339, e.g. 2026-11-30T07:00:00Z) nor a spool position (SEGMENT:OFFSET[:ENTRY], e.g. 3:16)`,
  ]);
}

export interface ParsedRangeArgs {
  readonly range: SpoolRange;
  readonly values: Readonly<Record<string, string | undefined>>;
}

/**
 * Parses the command's arguments: the range flags plus `extra` string flags of the command. Unknown
 * flags and stray arguments are a ConfigError (one line, exit 2).
 */
export function parseRangeArgs(command: string, argv: readonly string[], extra: readonly string[]): ParsedRangeArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        match: { type: 'string', multiple: true },
        path: { type: 'string' },
        ...Object.fromEntries(extra.map((name) => [name, { type: 'string' as const }])),
      },
    });
  } catch (err) {
    throw new ConfigError([`${command}: ${errorMessage(err)}`]);
  }
  const v = parsed.values as Record<string, string | string[] | undefined>;
  const fromText = v.from as string | undefined;
  if (fromText === undefined) throw new ConfigError([`${command}: --from TIME|POSITION is required`]);
  const from = parseBound('--from', fromText);
  const toText = v.to as string | undefined;
  const to = toText === undefined ? undefined : parseBound('--to', toText);
  if (to !== undefined && from.kind === to.kind && compareBounds(from, to) >= 0) {
    throw new ConfigError([`${command}: --to ${to.text} is not after --from ${from.text}`]);
  }
  const match = ((v.match as string[] | undefined) ?? []).map((m) => {
    const eq = m.indexOf('=');
    if (eq <= 0) throw new ConfigError([`--match: "${m}" is not KEY=VALUE`]);
    return { key: m.slice(0, eq), value: m.slice(eq + 1) };
  });
  const path = v.path as string | undefined;
  const values: Record<string, string | undefined> = {};
  for (const name of extra) values[name] = v[name] as string | undefined;
  return { range: { from, ...(to === undefined ? {} : { to }), match, ...(path === undefined ? {} : { path }) }, values };
}

function compareBounds(a: RangeBound, b: RangeBound): number {
  if (a.kind === 'time' && b.kind === 'time') return a.unixNano < b.unixNano ? -1 : a.unixNano > b.unixNano ? 1 : 0;
  if (a.kind === 'position' && b.kind === 'position') return a.segment - b.segment || a.offset - b.offset || a.entry - b.entry;
  return 0;
}

/**
 * Decides, entry by entry, what of the spool is in the range. Records come in spool order; `done`
 * turns true once a position bound `to` is reached (nothing after it can be in the range).
 */
export class RangeFilter {
  private readonly pathMatches: ((path: string) => boolean) | undefined;
  done = false;

  constructor(readonly range: SpoolRange) {
    this.pathMatches = range.path === undefined ? undefined : picomatch(range.path, { dot: true });
  }

  /** Where to start reading (a position bound), else the oldest segment. */
  get start(): { segment: number; offset: number } | undefined {
    const f = this.range.from;
    return f.kind === 'position' ? { segment: f.segment, offset: f.offset } : undefined;
  }

  /** The entries of the record at (segment, offset) that are in the range, in order. */
  select(segment: number, offset: number, entries: readonly Entry[]): Entry[] {
    const { from, to } = this.range;
    let first = 0;
    let end = entries.length;
    if (from.kind === 'position') {
      const c = segment - from.segment || offset - from.offset;
      if (c < 0) return [];
      if (c === 0) first = Math.min(from.entry, entries.length);
    }
    if (to?.kind === 'position') {
      const c = segment - to.segment || offset - to.offset;
      if (c > 0 || (c === 0 && to.entry === 0)) {
        this.done = true;
        return [];
      }
      if (c === 0) {
        end = Math.min(to.entry, entries.length);
        this.done = true;
      }
    }
    const out: Entry[] = [];
    for (let i = first; i < end; i++) {
      const e = entries[i] as Entry;
      if (from.kind === 'time' && e.timeUnixNano < from.unixNano) continue;
      if (to?.kind === 'time' && e.timeUnixNano >= to.unixNano) continue;
      if (!this.matches(e)) continue;
      out.push(e);
    }
    return out;
  }

  private matches(e: Entry): boolean {
    for (const m of this.range.match) if (!e.tags.some((t) => t.key === m.key && t.value === m.value)) return false;
    return this.pathMatches === undefined || this.pathMatches(e.source.path);
  }
}

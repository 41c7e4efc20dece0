import { describe, expect, it } from 'vitest';
import { RangeFilter, parseBound, parseRangeArgs } from '../../src/cli/spool-range.js';
import { progressLine } from '../../src/cli/progress.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { buildEntries } from '../helpers/ingest-client.js';

describe('spool range arguments', () => {
  it('parses positions and RFC 3339 times to the nanosecond', () => {
    expect(parseBound('--from', '3:16')).toMatchObject({ kind: 'position', segment: 3, offset: 16, entry: 0 });
    expect(parseBound('--from', '3:16:7')).toMatchObject({ kind: 'position', entry: 7 });
    expect(parseBound('--from', '2026-11-30T07:00:00.123456789Z')).toMatchObject({ kind: 'time', unixNano: 1796022000123456789n });
    expect(parseBound('--to', '2026-11-30T08:00:00+01:00')).toMatchObject({ kind: 'time', unixNano: 1796022000000000000n });
    expect(() => parseBound('--from', 'yesterday')).toThrow(/--from: "yesterday" is neither a time/);
  });

  it('requires --from, refuses unknown flags, bad --match and an empty range, one line each', () => {
    expect(() => parseRangeArgs('spool export', [], [])).toThrow(/--from TIME\|POSITION is required/);
    expect(() => parseRangeArgs('spool export', ['--from', '1:16', '--nope', 'x'], [])).toThrow(/--nope/);
    expect(() => parseRangeArgs('spool export', ['--from', '1:16', '--match', 'novalue'], [])).toThrow(/KEY=VALUE/);
    expect(() => parseRangeArgs('spool export', ['--from', '2:16', '--to', '1:16'], [])).toThrow(/is not after/);
    const ok = parseRangeArgs('spool export', ['--from', '1:16', '--match', 'a=b', '--match', 'c=d=e', '--format', 'json'], ['format']);
    expect(ok.range.match).toEqual([
      { key: 'a', value: 'b' },
      { key: 'c', value: 'd=e' },
    ]);
    expect(ok.values.format).toBe('json');
  });

  it('selects entries by position (with an entry index), time, tag and path glob', () => {
    const entries = decodeEntries(
      buildEntries(
        [0, 1, 2, 3].map((i) => ({ data: Buffer.from(`l${i}`), path: i % 2 === 0 ? '/var/log/a.log' : '/var/log/b.log', timeUnixNano: BigInt(i) * 1000n })),
        { tags: [{ key: 'team', value: 'blue' }] },
      ).entries,
    );
    const lines = (es: readonly { line: Buffer }[]): string[] => es.map((e) => e.line.toString());
    const pos = new RangeFilter(parseRangeArgs('x', ['--from', '1:100:1', '--to', '2:16:3'], []).range);
    expect(pos.select(1, 50, entries)).toEqual([]);
    expect(lines(pos.select(1, 100, entries))).toEqual(['l1', 'l2', 'l3']);
    expect(lines(pos.select(2, 16, entries))).toEqual(['l0', 'l1', 'l2']);
    expect(pos.done).toBe(true);
    const time = new RangeFilter({ from: { kind: 'time', unixNano: 1000n, text: '' }, to: { kind: 'time', unixNano: 3000n, text: '' }, match: [] });
    expect(lines(time.select(1, 16, entries))).toEqual(['l1', 'l2']);
    const filtered = new RangeFilter(parseRangeArgs('x', ['--from', '1:16', '--path', '**/b.log', '--match', 'team=blue'], []).range);
    expect(lines(filtered.select(1, 16, entries))).toEqual(['l1', 'l3']);
    const red = new RangeFilter(parseRangeArgs('x', ['--from', '1:16', '--match', 'team=red'], []).range);
    expect(red.select(1, 16, entries)).toEqual([]);
  });

  it('formats progress with rate and ETA', () => {
    expect(progressLine('replay', 1000, 1024 * 1024, 4 * 1024 * 1024, 1000)).toBe('replay: 1000 entries, 1.0 MiB of 4.0 MiB (25%), 1.0 MiB/s, ETA 3s');
  });
});

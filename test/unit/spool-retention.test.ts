import { describe, expect, it } from 'vitest';
import { formatSegmentList, parsePurgeBound, segmentBefore, takeArchiveFlags } from '../../src/aggregator/spool-archive-commands.js';
import { loadAggregatorConfig } from '../../src/config/aggregator-config.js';
import { parseRetention } from '../../src/config/retention.js';
import { ConfigError } from '../../src/errors.js';
import { evictionCount, expiredCount, nextExpiryMs } from '../../src/spool/retention.js';
import type { RetainedSegment } from '../../src/spool/retention.js';
import type { SegmentInfo } from '../../src/spool/segment-list.js';

const H = 3_600_000;
const GiB = 1024 ** 3;

/** Retained segments sealed an hour apart, `size` bytes each, the oldest sealed at t=0. */
function hourly(n: number, size: number): RetainedSegment[] {
  return Array.from({ length: n }, (_, i) => ({ number: i + 1, size, sealedAtMs: i * H }));
}

describe('AGGREGATOR_SPOOL_RETENTION', () => {
  it('reads a duration, a byte size or both, in either order; off by default and for "off"', () => {
    expect(parseRetention('24h')).toEqual({ maxAgeMs: 24 * H });
    expect(parseRetention('20GiB')).toEqual({ maxBytes: 20 * GiB });
    expect(parseRetention('24h,20GiB')).toEqual({ maxAgeMs: 24 * H, maxBytes: 20 * GiB });
    expect(parseRetention(' 20GiB , 90m ')).toEqual({ maxAgeMs: 90 * 60_000, maxBytes: 20 * GiB });
    expect(parseRetention('off')).toBeUndefined();
    expect(loadAggregatorConfig({}).spoolRetention).toBeUndefined();
    expect(loadAggregatorConfig({ AGGREGATOR_SPOOL_RETENTION: '1h,1GiB' }).spoolRetention).toEqual({ maxAgeMs: H, maxBytes: GiB });
  });

  it.each(['forever', '24h,24h', '1GiB,2GiB', '24h,', '1h,2h,3GiB', '0s'])('refuses "%s" with one line naming the variable', (raw) => {
    let err: unknown;
    try {
      loadAggregatorConfig({ AGGREGATOR_SPOOL_RETENTION: raw });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^invalid configuration: AGGREGATOR_SPOOL_RETENTION: /);
    expect((err as Error).message).not.toContain('\n');
  });
});

describe('retention decisions (pure, virtual time)', () => {
  it('by age: a segment goes once older than the age, oldest first; the next expiry is the oldest kept one', () => {
    const segs = hourly(5, 100); // sealed at 0h, 1h, 2h, 3h, 4h
    const policy = { maxAgeMs: 2 * H };
    expect(expiredCount(segs, policy, 2 * H)).toBe(0);
    expect(expiredCount(segs, policy, 2 * H + 1)).toBe(1);
    expect(expiredCount(segs, policy, 4 * H + 1)).toBe(3);
    expect(expiredCount(segs, policy, 100 * H)).toBe(5);
    expect(nextExpiryMs(segs, policy)).toBe(2 * H);
    expect(nextExpiryMs(segs.slice(3), policy)).toBe(5 * H);
    expect(nextExpiryMs(segs, { maxBytes: 1 })).toBeUndefined();
  });

  it('by size: the oldest go until the rest fit', () => {
    const segs = hourly(5, 100);
    expect(expiredCount(segs, { maxBytes: 500 }, 0)).toBe(0);
    expect(expiredCount(segs, { maxBytes: 499 }, 0)).toBe(1);
    expect(expiredCount(segs, { maxBytes: 250 }, 0)).toBe(3);
    expect(expiredCount(segs, { maxBytes: 50 }, 0)).toBe(5);
  });

  it('both: whichever limit is reached first', () => {
    const segs = hourly(5, 100);
    expect(expiredCount(segs, { maxAgeMs: 10 * H, maxBytes: 300 }, 5 * H)).toBe(2);
    expect(expiredCount(segs, { maxAgeMs: 1 * H, maxBytes: 10_000 }, 5 * H)).toBe(4);
  });

  it('without a policy nothing is retained (delivered segments go at once)', () => {
    expect(expiredCount(hourly(3, 100), undefined, 0)).toBe(3);
  });

  it('evicts for room oldest first, as many as the bytes need', () => {
    const segs = hourly(4, 100);
    expect(evictionCount(segs, 0)).toBe(0);
    expect(evictionCount(segs, 1)).toBe(1);
    expect(evictionCount(segs, 100)).toBe(1);
    expect(evictionCount(segs, 101)).toBe(2);
    expect(evictionCount(segs, 10_000)).toBe(4);
  });
});

function info(segment: number, partial: Partial<SegmentInfo> = {}): SegmentInfo {
  return {
    segment,
    file: `/s/${segment}.seg`,
    bytes: 1000,
    modifiedMs: 0,
    firstPosition: { segment, offset: 16 },
    lastPosition: { segment, offset: 500 },
    endPosition: { segment, offset: 1000 },
    records: 2,
    entries: 10,
    firstEntryTimeNs: 1_000_000_000_000_000_000n,
    lastEntryTimeNs: 1_000_000_060_000_000_000n,
    sealed: true,
    status: 'retained',
    corruptRanges: 0,
    ...partial,
  };
}

describe('spool list and purge (pure parts)', () => {
  it('lists one aligned line per segment with positions, entry times, entries, bytes and status', () => {
    const text = formatSegmentList([info(1), info(2, { status: 'pending', sealed: false, firstPosition: undefined, lastPosition: undefined, firstEntryTimeNs: undefined, lastEntryTimeNs: undefined, entries: 0 })]);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^segment\s+first\s+last\s+first entry time\s+last entry time\s+entries\s+bytes\s+status$/);
    expect(lines[1]!.split(/\s+/)).toEqual(['1', '1:16', '1:500', '2001-09-09T01:46:40.000Z', '2001-09-09T01:47:40.000Z', '10', '1000', 'retained']);
    expect(lines[2]!.split(/\s+/)).toEqual(['2', '-', '-', '-', '-', '0', '1000', 'pending']);
  });

  it('reads --before as a position, an ISO time or a duration ago; a bad one names the flag', () => {
    const now = Date.parse('2026-11-30T08:00:00Z');
    expect(parsePurgeBound('3:4096', now)).toEqual({ kind: 'position', position: { segment: 3, offset: 4096 } });
    expect(parsePurgeBound('2026-11-30T06:00:00Z', now)).toEqual({ kind: 'time', ns: BigInt(Date.parse('2026-11-30T06:00:00Z')) * 1_000_000n });
    expect(parsePurgeBound('2h', now)).toEqual({ kind: 'time', ns: BigInt(Date.parse('2026-11-30T06:00:00Z')) * 1_000_000n });
    expect(() => parsePurgeBound('yesterday', now)).toThrow(/^invalid configuration: --before: /);
    expect(() => parsePurgeBound(undefined, now)).toThrow(/--before is required/);
  });

  it('a segment is before a bound when all of it is: its end by position, its last entry by time', () => {
    expect(segmentBefore(info(2), { kind: 'position', position: { segment: 3, offset: 0 } })).toBe(true);
    expect(segmentBefore(info(3), { kind: 'position', position: { segment: 3, offset: 999 } })).toBe(false);
    expect(segmentBefore(info(3), { kind: 'position', position: { segment: 3, offset: 1000 } })).toBe(true);
    expect(segmentBefore(info(1), { kind: 'time', ns: 1_000_000_060_000_000_001n })).toBe(true);
    expect(segmentBefore(info(1), { kind: 'time', ns: 1_000_000_060_000_000_000n })).toBe(false);
  });

  it('takes the archive flags out of argv only for the archive commands', () => {
    expect(takeArchiveFlags(['spool', 'list', '--json'])).toEqual({ json: true, before: undefined, rest: ['spool', 'list'] });
    expect(takeArchiveFlags(['spool', 'purge', '--before', '3:16'])).toMatchObject({ before: '3:16', rest: ['spool', 'purge'] });
    expect(takeArchiveFlags(['spool', 'purge', '--before=2h']).before).toBe('2h');
    expect(takeArchiveFlags(['--json']).rest).toEqual(['--json']);
  });
});

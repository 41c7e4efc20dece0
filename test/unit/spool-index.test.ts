import { describe, expect, it } from 'vitest';
import { SEGMENT_HEADER_BYTES } from '../../src/spool/segment-format.js';
import {
  SegmentIndex,
  addBadRange,
  entriesBefore,
  fullyDelivered,
  indexRecord,
  newSegment,
  pendingEntries,
  totalEntries,
} from '../../src/spool/segment-index.js';
import type { SegmentState } from '../../src/spool/segment-index.js';

/** A segment with records at the given offsets holding the given entries; size = `size`. */
function seg(number: number, records: Array<[offset: number, entries: number]>, size: number): SegmentState {
  const s = newSegment(number, size);
  for (const [o, e] of records) indexRecord(s, o, e);
  return s;
}

describe('segment index math', () => {
  const s = seg(3, [[16, 2], [100, 0], [200, 5], [300, 1]], 400);

  it('counts entries of records starting before an offset (binary search over cumulative counts)', () => {
    expect(entriesBefore(s, 0)).toBe(0);
    expect(entriesBefore(s, 16)).toBe(0);
    expect(entriesBefore(s, 17)).toBe(2);
    expect(entriesBefore(s, 100)).toBe(2);
    expect(entriesBefore(s, 200)).toBe(2);
    expect(entriesBefore(s, 201)).toBe(7);
    expect(entriesBefore(s, 300)).toBe(7);
    expect(entriesBefore(s, 400)).toBe(8);
    expect(totalEntries(s)).toBe(8);
    expect(totalEntries(newSegment(1, SEGMENT_HEADER_BYTES))).toBe(0);
  });

  it('counts pending entries from a delivered position, mid-record included, never below 0', () => {
    const later = seg(4, [[16, 10]], 100);
    expect(pendingEntries([s, later], { segment: 3, offset: 16, entry: 0 })).toBe(18);
    expect(pendingEntries([s, later], { segment: 3, offset: 200, entry: 3 })).toBe(6 + 10 - 3);
    expect(pendingEntries([s, later], { segment: 4, offset: 16, entry: 0 })).toBe(10);
    expect(pendingEntries([s, later], { segment: 4, offset: 100, entry: 0 })).toBe(0);
    expect(pendingEntries([s, later], { segment: 5, offset: 16, entry: 0 })).toBe(0);
    // An entry count past the record's own (a caller's mistake) does not go negative.
    expect(pendingEntries([later], { segment: 4, offset: 16, entry: 50 })).toBe(0);
  });

  it('tells a fully delivered segment by number and end', () => {
    expect(fullyDelivered(s, { segment: 4, offset: 16, entry: 0 })).toBe(true);
    expect(fullyDelivered(s, { segment: 3, offset: 400, entry: 0 })).toBe(true);
    expect(fullyDelivered(s, { segment: 3, offset: 300, entry: 1 })).toBe(false);
    expect(fullyDelivered(s, { segment: 2, offset: 9999, entry: 0 })).toBe(false);
  });

  it('keeps damaged ranges ascending', () => {
    const t = seg(1, [], 1000);
    addBadRange(t, 500, 600);
    addBadRange(t, 100, 200);
    addBadRange(t, 300, 400);
    expect(t.badRanges.map((r) => r.start)).toEqual([100, 300, 500]);
  });
});

describe('SegmentIndex', () => {
  it('tracks the active segment, bytes on disk, rolls, cuts and deletions', () => {
    const a = seg(1, [[16, 1]], 50);
    a.sealed = true;
    const b = seg(2, [[16, 2], [40, 3]], 80);
    const index = new SegmentIndex([a, b]);
    expect(index.active).toBe(b);
    expect(index.diskBytes).toBe(130);
    expect(index.count).toBe(2);

    index.grow(20);
    expect(b.size).toBe(100);
    expect(b.durableEnd).toBe(80); // not durable until synced
    expect(index.diskBytes).toBe(150);
    // A failed write is cut back to the durable end; records there stay indexed.
    index.cut(80);
    expect(b.size).toBe(80);
    expect(b.offsets).toEqual([16, 40]);
    expect(index.diskBytes).toBe(130);

    const c = newSegment(3, SEGMENT_HEADER_BYTES);
    index.roll(c, 1234);
    expect(b.sealedAtMs).toBe(1234);
    expect(b.sealed).toBe(true);
    expect(index.active).toBe(c);
    expect(index.diskBytes).toBe(130 + SEGMENT_HEADER_BYTES);
    expect(index.after(1)).toBe(b);
    expect(index.after(3)).toBeUndefined();

    // Deleting a delivered segment: readers stop seeing it at once, its bytes go when the file does.
    index.detach(a);
    expect(index.get(1)).toBeUndefined();
    expect(index.after(0)).toBe(b);
    expect(index.diskBytes).toBe(130 + SEGMENT_HEADER_BYTES);
    index.deleted(a);
    expect(index.diskBytes).toBe(80 + SEGMENT_HEADER_BYTES);
    // A deletion that failed puts it back, in order.
    index.detach(b);
    index.reattach(b);
    expect(index.all().map((x) => x.number)).toEqual([2, 3]);
  });

  it('truncating the active segment to its header forgets its records', () => {
    const a = seg(5, [[16, 4], [60, 4]], 100);
    const index = new SegmentIndex([a]);
    index.cut(SEGMENT_HEADER_BYTES);
    expect(a.size).toBe(SEGMENT_HEADER_BYTES);
    expect(a.durableEnd).toBe(SEGMENT_HEADER_BYTES);
    expect(a.offsets).toEqual([]);
    expect(totalEntries(a)).toBe(0);
    expect(index.diskBytes).toBe(SEGMENT_HEADER_BYTES);
  });
});

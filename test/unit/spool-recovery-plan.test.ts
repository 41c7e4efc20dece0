import { describe, expect, it } from 'vitest';
import { planRecovery, recordStartBefore } from '../../src/spool/recovery-plan.js';
import type { SegmentScan } from '../../src/spool/segment-scan.js';
import type { SegmentFile, SpoolLayout } from '../../src/spool/spool-layout.js';
import type { DeliveredPosition } from '../../src/spool/spool-types.js';

const START: DeliveredPosition = { segment: 0, offset: 0, entry: 0 };

/** A walked segment whose records (each `len` bytes with `entries`) follow the 16-byte header. */
function walked(number: number, records: Array<[len: number, entries: number]>, extra: Partial<SegmentScan> = {}, trailing = 0): SegmentFile {
  const offsets: number[] = [];
  const entries: number[] = [];
  let pos = 16;
  for (const [len, e] of records) {
    offsets.push(pos);
    entries.push(e);
    pos += len;
  }
  return { number, size: pos + trailing, mtimeMs: 0, scan: { validEnd: pos, offsets, entries, corrupt: [], ...extra } };
}

function layout(segments: SegmentFile[], delivered: DeliveredPosition = START, deliveredProblem?: string): SpoolLayout {
  return deliveredProblem === undefined ? { dir: '/s', segments, delivered } : { dir: '/s', segments, delivered, deliveredProblem };
}

describe('recovery plan (pure: what open does and inspect reports)', () => {
  it('an empty directory: create segment 1 and deliver from its start', () => {
    const plan = planRecovery(layout([]));
    expect(plan.create).toBe(1);
    expect(plan.segments).toEqual([]);
    expect(plan.delivered).toEqual({ segment: 1, offset: 16, entry: 0 });
    expect(plan.remove).toEqual([]);
  });

  it('keeps segments from the delivered one on, seals all but the last, indexes their records', () => {
    const plan = planRecovery(layout([{ number: 1, size: 500, mtimeMs: 0 }, walked(2, [[30, 2], [40, 3]]), walked(3, [[20, 1]])], { segment: 2, offset: 46, entry: 1 }));
    expect(plan.remove).toEqual([1]);
    expect(plan.segments.map((s) => [s.number, s.sealed, s.offsets])).toEqual([
      [2, true, [16, 46]],
      [3, false, [16]],
    ]);
    expect(plan.create).toBeUndefined();
    expect(plan.delivered).toEqual({ segment: 2, offset: 46, entry: 1 });
    expect(plan.notes).toEqual([]);
  });

  it('cuts a torn tail of the last segment only; a bad end of an older one is a corrupt range readers skip', () => {
    const tail = { start: 66, end: 90, reason: 'torn record header' };
    const plan = planRecovery(layout([walked(1, [[50, 1]], { tail }, 24), walked(2, [[50, 1]], { tail }, 24)]));
    expect(plan.repair).toEqual({ segment: 2, to: 66, rewriteHeader: false });
    expect(plan.segments[1]!.size).toBe(66);
    expect(plan.segments[1]!.durableEnd).toBe(66);
    expect(plan.segments[0]!.badRanges).toEqual([{ start: 66, end: 90 }]);
    expect(plan.corruptRanges).toBe(1);
    expect(plan.notes.map((n) => n.level)).toEqual(['error', 'warn']);
  });

  it('rewrites the header of a last segment whose header is bad', () => {
    const file: SegmentFile = { number: 4, size: 10, mtimeMs: 0, scan: { validEnd: 0, offsets: [], entries: [], corrupt: [], badHeader: 'bad segment magic', tail: { start: 0, end: 10, reason: 'bad segment magic' } } };
    const plan = planRecovery(layout([file], { segment: 4, offset: 16, entry: 0 }));
    expect(plan.repair).toEqual({ segment: 4, to: 16, rewriteHeader: true });
    expect(plan.segments[0]!.size).toBe(16);
  });

  it('counts corrupt ranges in the middle of segments and logs each', () => {
    const plan = planRecovery(layout([walked(1, [[50, 1], [50, 1]], { corrupt: [{ start: 66, end: 80, reason: 'record checksum mismatch' }] })]));
    expect(plan.corruptRanges).toBe(1);
    expect(plan.segments[0]!.badRanges).toEqual([{ start: 66, end: 80 }]);
    expect(plan.notes[0]!.obj).toMatchObject({ segment: 1, start: 66, end: 80, file: '/s/00000000000000000001.seg' });
  });

  it('moves a delivered position that is not a record boundary back to the record containing it', () => {
    const plan = planRecovery(layout([walked(1, [[50, 1], [50, 1], [50, 1]])], { segment: 1, offset: 90, entry: 1 }));
    expect(plan.delivered).toEqual({ segment: 1, offset: 66, entry: 0 });
    expect(plan.notes[0]!.msg).toMatch(/not a record boundary/);
    expect(recordStartBefore([16, 66, 116], 90)).toBe(66);
    expect(recordStartBefore([16, 66, 116], 16)).toBe(16);
    expect(recordStartBefore([], 500)).toBe(16);
  });

  it('clamps a delivered position past the end of its segment (a truncated delivered active segment)', () => {
    const plan = planRecovery(layout([walked(7, [])], { segment: 7, offset: 5000, entry: 2 }));
    expect(plan.delivered).toEqual({ segment: 7, offset: 16, entry: 0 });
    expect(plan.notes.map((n) => n.msg)).toEqual(['spool: delivered position beyond the end of its segment; clamping']);
  });

  it('a delivered position before the oldest segment starts at the oldest one', () => {
    const plan = planRecovery(layout([walked(5, [[20, 1]])], START, 'delivered.json is not a valid position: "x"'));
    expect(plan.delivered).toEqual({ segment: 5, offset: 16, entry: 0 });
    expect(plan.notes[0]).toMatchObject({ level: 'error', msg: expect.stringMatching(/delivering again from the oldest segment/) });
  });

  it('everything delivered and deleted: a new segment numbered above both the files and the position', () => {
    expect(planRecovery(layout([{ number: 3, size: 100, mtimeMs: 0 }], { segment: 9, offset: 16, entry: 0 })).create).toBe(10);
    const plan = planRecovery(layout([{ number: 3, size: 100, mtimeMs: 0 }], { segment: 9, offset: 16, entry: 0 }));
    expect(plan.remove).toEqual([3]);
    expect(plan.delivered).toEqual({ segment: 10, offset: 16, entry: 0 });
  });
});

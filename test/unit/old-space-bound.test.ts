import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/util/manual-clock.js';
import { OldSpaceBound } from '../../src/util/old-space-bound.js';

const MiB = 1024 * 1024;

/** An old space whose used bytes the test sets; a collection drops them to `live`. */
function fakeHeap(initialMiB: number) {
  const heap = { usedMiB: initialMiB, liveMiB: initialMiB, collections: 0 };
  return {
    heap,
    oldSpaceUsed: () => heap.usedMiB * MiB,
    collect: () => {
      heap.collections++;
      heap.usedMiB = heap.liveMiB;
    },
  };
}

function bound(clock: ManualClock, f: ReturnType<typeof fakeHeap>, seen: Array<[number, number]> = []): OldSpaceBound {
  return new OldSpaceBound({
    clock,
    slackBytes: 2 * MiB,
    checkEveryMs: 1000,
    minIntervalMs: 5000,
    collect: f.collect,
    oldSpaceUsed: f.oldSpaceUsed,
    onCollect: (before, after) => seen.push([before / MiB, after / MiB]),
  });
}

describe('OldSpaceBound', () => {
  it('collects once the old space has grown past the slack over what was used at the first look, and reports before and after', () => {
    const clock = new ManualClock();
    const f = fakeHeap(10);
    const seen: Array<[number, number]> = [];
    const b = bound(clock, f, seen);
    b.start();
    clock.advance(1000); // first look: 10 MiB is the baseline
    f.heap.usedMiB = 12; // exactly the slack: not past it
    clock.advance(1000);
    expect(f.heap.collections).toBe(0);
    f.heap.usedMiB = 12.5;
    clock.advance(1000);
    expect(f.heap.collections).toBe(1);
    expect(seen).toEqual([[12.5, 10]]);
    b.stop();
  });

  it('measures from what the last collection left live, and from a lower level when V8 collected by itself', () => {
    const clock = new ManualClock();
    const f = fakeHeap(10);
    const b = bound(clock, f);
    expect(b.check()).toBe(false); // baseline 10
    f.heap.usedMiB = 13;
    f.heap.liveMiB = 11; // live data grew by 1 MiB
    expect(b.check()).toBe(true); // 13 > 10 + 2; leaves 11
    clock.advance(6000);
    f.heap.usedMiB = 12.9; // within 11 + 2
    expect(b.check()).toBe(false);
    f.heap.usedMiB = 9; // V8's own mark-compact: the baseline follows it down
    f.heap.liveMiB = 9;
    expect(b.check()).toBe(false);
    clock.advance(6000);
    f.heap.usedMiB = 10.9; // within 9 + 2
    expect(b.check()).toBe(false);
    f.heap.usedMiB = 11.2; // past 9 + 2, though within the old baseline's 11 + 2
    expect(b.check()).toBe(true);
    expect(f.heap.collections).toBe(2);
  });

  it('collects at most once per minIntervalMs, however fast live data grows', () => {
    const clock = new ManualClock();
    const f = fakeHeap(10);
    const b = bound(clock, f);
    b.start();
    clock.advance(1000);
    // Live data grows 3 MiB a second (more files tailed): every look is past the slack.
    for (let s = 0; s < 20; s++) {
      f.heap.liveMiB += 3;
      f.heap.usedMiB = f.heap.liveMiB + 0.5;
      clock.advance(1000);
    }
    // 20 s of looks, each past the bound: the first collects, then one per 5 s.
    expect(f.heap.collections).toBe(4);
    b.stop();
  });

  it('stops looking when stopped (idempotent), and does not start again', () => {
    const clock = new ManualClock();
    const f = fakeHeap(10);
    const b = bound(clock, f);
    b.start();
    clock.advance(1000);
    b.stop();
    b.stop();
    b.start();
    f.heap.usedMiB = 50;
    clock.advance(10_000);
    expect(f.heap.collections).toBe(0);
  });

  it('refuses a bound that could not work', () => {
    const clock = new ManualClock();
    const f = fakeHeap(1);
    const make = (slackBytes: number, checkEveryMs: number, minIntervalMs: number) => () =>
      new OldSpaceBound({ clock, slackBytes, checkEveryMs, minIntervalMs, collect: f.collect, oldSpaceUsed: f.oldSpaceUsed });
    expect(make(0, 1000, 0)).toThrow(RangeError);
    expect(make(MiB, 0, 0)).toThrow(RangeError);
    expect(make(MiB, 1000, -1)).toThrow(RangeError);
    expect(make(Number.NaN, 1000, 0)).toThrow(RangeError);
    expect(make(MiB, 1000, 0)).not.toThrow();
  });
});

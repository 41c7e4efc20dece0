import { describe, expect, it } from 'vitest';
import { FreeSpace, defaultMinFreeBytes, effectiveSegmentBytes } from '../../src/spool/free-space.js';
import type { VolumeStats } from '../../src/spool/free-space.js';
import { ManualClock } from '../../src/util/manual-clock.js';

const MiB = 1024 * 1024;

/** A volume whose answers the test sets; counts statfs calls. */
function fakeVolume(initial: VolumeStats) {
  const v = { stats: initial, calls: 0, fail: false };
  const stat = (): Promise<VolumeStats> => {
    v.calls++;
    return v.fail ? Promise.reject(new Error('EIO')) : Promise.resolve(v.stats);
  };
  return { v, stat };
}

describe('spool free-space admission', () => {
  it('sizes segments to at most a quarter of the bound and of the volume, never below the minimum', () => {
    expect(effectiveSegmentBytes(64 * MiB, 1024 * MiB, 100_000 * MiB, 4096)).toBe(64 * MiB);
    // A 20 MiB volume under the default 64 MiB segments: 5 MiB segments.
    expect(effectiveSegmentBytes(64 * MiB, 1024 * MiB, 20 * MiB, 4096)).toBe(5 * MiB);
    expect(effectiveSegmentBytes(64 * MiB, 8 * MiB, 20 * MiB, 4096)).toBe(2 * MiB);
    expect(effectiveSegmentBytes(64 * MiB, 1024 * MiB, undefined, 4096)).toBe(64 * MiB);
    expect(effectiveSegmentBytes(64 * MiB, 1024 * MiB, 8192, 4096)).toBe(4096);
  });

  it('keeps 5% of the volume free by default, at most 256 MiB', () => {
    expect(defaultMinFreeBytes(20 * MiB)).toBe(1 * MiB);
    expect(defaultMinFreeBytes(100 * 1024 * MiB)).toBe(256 * MiB);
  });

  it('refuses what would eat into the reserve, counting its own writes between samples', () => {
    const clock = new ManualClock();
    const { v, stat } = fakeVolume({ totalBytes: 20 * MiB, availableBytes: 10 * MiB });
    const free = new FreeSpace('/spool', 1 * MiB, v.stats, stat, clock);
    expect(free.admits(9 * MiB)).toBe(true);
    expect(free.admits(9 * MiB + 1)).toBe(false);
    free.noteWritten(4 * MiB);
    expect(free.availableBytes).toBe(6 * MiB);
    expect(free.admits(5 * MiB)).toBe(true);
    expect(free.admits(5 * MiB + 1)).toBe(false);
    expect(v.calls).toBe(0); // the sample is fresh: no statfs per append
  });

  it('samples again when the last sample is old, and after the spool frees space', async () => {
    const clock = new ManualClock();
    const { v, stat } = fakeVolume({ totalBytes: 20 * MiB, availableBytes: 2 * MiB });
    const free = new FreeSpace('/spool', 1 * MiB, v.stats, stat, clock, 250);
    expect(free.admits(2 * MiB)).toBe(false);
    // Someone (delivery, another program) frees space: seen once the sample is older than 250 ms.
    v.stats = { totalBytes: 20 * MiB, availableBytes: 12 * MiB };
    clock.advance(249);
    expect(free.admits(2 * MiB)).toBe(false);
    expect(v.calls).toBe(0);
    clock.advance(1);
    expect(free.admits(2 * MiB)).toBe(false); // this call starts the sample
    await free.refresh();
    expect(v.calls).toBe(1);
    expect(free.admits(2 * MiB)).toBe(true);
    v.stats = { totalBytes: 20 * MiB, availableBytes: 3 * MiB };
    await free.refresh();
    expect(free.admits(2 * MiB + 1)).toBe(false);
  });

  it('counts writes made while statfs runs as not in the sample (errs on the safe side), and keeps the estimate when statfs fails', async () => {
    const clock = new ManualClock();
    const { v, stat } = fakeVolume({ totalBytes: 20 * MiB, availableBytes: 10 * MiB });
    const free = new FreeSpace('/spool', 0, v.stats, stat, clock);
    const sampling = free.refresh();
    free.noteWritten(3 * MiB);
    await sampling;
    expect(free.availableBytes).toBe(7 * MiB);
    v.fail = true;
    await free.refresh();
    expect(free.availableBytes).toBe(7 * MiB);
  });
});

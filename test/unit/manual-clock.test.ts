import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/util/clock.js';
import { ManualClock } from '../../src/util/manual-clock.js';

/** A promise chain `depth` continuations long, as deep async code (await inside await) makes. */
async function deepChain(depth: number): Promise<void> {
  for (let i = 0; i < depth; i++) await Promise.resolve();
}

describe('ManualClock', () => {
  it('advance fires due timers in due order, ties in creation order, and a timer set by one that falls due', () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@20'), 20);
    clock.setTimeout(() => {
      fired.push('a@10');
      clock.setTimeout(() => fired.push('c@15'), 5);
    }, 10);
    clock.setTimeout(() => fired.push('d@20'), 20);
    clock.setTimeout(() => fired.push('late@31'), 31);
    clock.advance(30);
    expect(fired).toEqual(['a@10', 'c@15', 'b@20', 'd@20']);
    expect(clock.now()).toBe(30);
    expect(clock.pendingTimers).toBe(1);
  });

  it('advanceAsync lets a continuation of any depth finish after its timer fires', async () => {
    const clock = new ManualClock(0);
    let done = false;
    void (async () => {
      await sleep(clock, 100);
      await deepChain(1000);
      done = true;
    })();
    await clock.advanceAsync(100);
    expect(done).toBe(true);
  });

  it('advanceAsync fires, within the same advance, a timer that a continuation sets after a deep chain', async () => {
    const clock = new ManualClock(0);
    const at: number[] = [];
    void (async () => {
      for (let round = 0; round < 3; round++) {
        await sleep(clock, 100);
        await deepChain(50);
        at.push(clock.now());
      }
    })();
    await clock.advanceAsync(300);
    expect(at).toEqual([100, 200, 300]);
    expect(clock.now()).toBe(300);
  });

  it('advanceAsync runs work queued before it, before time moves', async () => {
    const clock = new ManualClock(0);
    let firedAt: number | undefined;
    void (async () => {
      await deepChain(30);
      clock.setTimeout(() => (firedAt = clock.now()), 50);
    })();
    await clock.advanceAsync(60);
    expect(firedAt).toBe(50);
  });

  it('advanceAsync in steps stops at every step boundary and ends at the target', async () => {
    const clock = new ManualClock(0);
    const seen: number[] = [];
    let running = true;
    void (async () => {
      while (running) {
        await sleep(clock, 25);
        seen.push(clock.now());
      }
    })();
    await clock.advanceAsync(100, 40);
    running = false;
    expect(seen).toEqual([25, 50, 75, 100]);
    expect(clock.now()).toBe(100);
    await clock.advanceAsync(0);
    expect(clock.now()).toBe(100);
  });
});

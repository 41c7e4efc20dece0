import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffCeilingMs, backoffDelayMs } from '../../src/retry/backoff.js';
import { Backoff, KEEP, retry } from '../../src/retry/retry.js';
import type { Clock, TimerHandle } from '../../src/util/clock.js';

/** A clock whose timers fire on the next microtask, recording the delays asked for: no real waits. */
function instantClock(): Clock & { readonly delays: number[] } {
  const delays: number[] = [];
  const handles = new Set<TimerHandle>();
  return {
    delays,
    now: () => 0,
    monotonicNs: () => 0n,
    setTimeout(fn, ms) {
      delays.push(ms);
      const handle: TimerHandle = { unref: () => undefined };
      handles.add(handle);
      queueMicrotask(() => {
        if (handles.delete(handle)) fn();
      });
      return handle;
    },
    clearTimeout(handle) {
      handles.delete(handle);
    },
  };
}

describe('backoff policy (exponential, full jitter)', () => {
  const policy = { initialDelayMs: 100, maxDelayMs: 5000 };

  it('doubles the ceiling per attempt up to the maximum', () => {
    expect([0, 1, 2, 3, 5, 6, 50, 5000].map((a) => backoffCeilingMs(policy, a))).toEqual([100, 200, 400, 800, 3200, 5000, 5000, 5000]);
    expect(backoffCeilingMs({ ...policy, multiplier: 3 }, 2)).toBe(900);
  });

  it('spans from the initial delay (random 0) to the ceiling (random → 1)', () => {
    expect(backoffDelayMs(policy, 3, () => 0)).toBe(100);
    expect(backoffDelayMs(policy, 3, () => 0.5)).toBe(450);
    expect(backoffDelayMs(policy, 3, () => 0.999999)).toBeCloseTo(800, 2);
    expect(backoffDelayMs(policy, 40, () => 1)).toBe(5000);
  });

  it('always stays within [initial, max] for any attempt and draw', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, r) => {
        const d = backoffDelayMs(policy, attempt, () => r);
        return d >= policy.initialDelayMs && d <= policy.maxDelayMs;
      }),
      { seed: 9 },
    );
  });

  it('a random source out of range cannot push the delay out of bounds', () => {
    expect(backoffDelayMs(policy, 2, () => -5)).toBe(100);
    expect(backoffDelayMs(policy, 2, () => 7)).toBe(400);
  });
});

describe('retry (the one retry loop)', () => {
  const policy = { initialDelayMs: 100, maxDelayMs: 1000 };

  it('tries again until the classifier keeps an outcome, waiting the backoff between attempts', async () => {
    const clock = instantClock();
    let calls = 0;
    const value = await retry(async () => ++calls, {
      policy,
      clock,
      random: () => 0.5,
      classify: (o) => (o.ok && o.value < 4 ? { retry: true, error: new Error(`attempt ${o.value}`) } : KEEP),
    });
    expect(value).toBe(4);
    expect(clock.delays).toEqual([100, 150, 250]);
  });

  it('retries throws by default and rethrows the last error when attempts are used up', async () => {
    const clock = instantClock();
    let calls = 0;
    await expect(
      retry(async () => {
        calls++;
        throw new Error(`boom ${calls}`);
      }, { policy, clock, random: () => 0, maxAttempts: 3 }),
    ).rejects.toThrow('boom 3');
    expect(calls).toBe(3);
    expect(clock.delays).toHaveLength(2);
  });

  it('honours a Retry-After hint but never waits past the maximum, and lets onFailure choose the delay', async () => {
    const clock = instantClock();
    const seen: number[] = [];
    let calls = 0;
    await retry(async () => ++calls, {
      policy,
      clock,
      random: () => 0,
      classify: (o) => (o.ok && o.value === 1 ? { retry: true, error: new Error('busy'), retryAfterMs: 600 } : o.ok && o.value === 2 ? { retry: true, error: new Error('busy'), retryAfterMs: 60_000 } : o.ok && o.value === 3 ? { retry: true, error: new Error('x') } : KEEP),
      onFailure: (f) => {
        seen.push(f.delayMs);
        return f.failures === 3 ? 777 : undefined;
      },
    });
    expect(seen).toEqual([600, 1000, 100]);
    expect(clock.delays).toEqual([600, 1000, 777]);
  });

  it('an abort during the wait ends at once with the last outcome', async () => {
    const ac = new AbortController();
    const clock = instantClock();
    const never: Clock = {
      ...clock,
      setTimeout: (_fn, ms) => {
        clock.delays.push(ms);
        queueMicrotask(() => ac.abort());
        return { unref: () => undefined };
      },
    };
    let calls = 0;
    const value = await retry(async () => ++calls, { policy, clock: never, random: () => 0, signal: ac.signal, classify: (o) => (o.ok ? { retry: true, error: new Error('again') } : KEEP) });
    expect(value).toBe(1);
    expect(calls).toBe(1);
  });

  it('Backoff gives the same schedule for event-driven retries and starts over after reset', () => {
    const b = new Backoff(policy, () => 1);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000]);
    expect(b.failures).toBe(5);
    b.reset();
    expect(b.next()).toBe(100);
  });
});

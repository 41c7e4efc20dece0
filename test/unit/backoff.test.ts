import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffCeilingMs, backoffDelayMs } from '../../src/emitters/backoff.js';

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
    );
  });

  it('a random source out of range cannot push the delay out of bounds', () => {
    expect(backoffDelayMs(policy, 2, () => -5)).toBe(100);
    expect(backoffDelayMs(policy, 2, () => 7)).toBe(400);
  });
});

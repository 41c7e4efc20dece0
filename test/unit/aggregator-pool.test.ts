import { describe, expect, it } from 'vitest';
import { AggregatorPool, jumpHash } from '../../src/collector/aggregator-pool.js';
import { Backoff } from '../../src/retry/retry.js';

const targets = (n: number, port = 8000) => Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${i + 1}:${port}`, host: 'aggregators.test' }));
const pool = (key: string, n = 3): AggregatorPool => {
  const p = new AggregatorPool(key, () => new Backoff({ initialDelayMs: 100, maxDelayMs: 1000 }, () => 1));
  p.setTargets(targets(n));
  return p;
};
const first = (p: AggregatorPool): string => p.ranking()[0]?.address ?? '';

describe('AggregatorPool: which aggregator a collector ships to', () => {
  it('a fleet spreads evenly over the aggregators (4,000 collector ids over 4 addresses: each within 8% of a quarter)', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const a = first(pool(`collector-${i}`, 4));
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    expect(counts.size).toBe(4);
    for (const c of counts.values()) expect(Math.abs(c - 1000)).toBeLessThan(80);
  });

  it('the collectors of a failed aggregator spread over all the others, not onto one', () => {
    const second = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const p = pool(`collector-${i}`, 4);
      const preferred = first(p);
      if (preferred !== '10.0.0.1:8000') continue;
      p.markFailed(preferred, 0);
      const next = p.pick(1)?.address ?? '';
      second.set(next, (second.get(next) ?? 0) + 1);
    }
    expect([...second.keys()].sort()).toEqual(['10.0.0.2:8000', '10.0.0.3:8000', '10.0.0.4:8000']);
    const total = [...second.values()].reduce((a, b) => a + b, 0);
    for (const c of second.values()) expect(Math.abs(c - total / 3)).toBeLessThan(total * 0.1);
  });

  it('the choice depends only on the key and the set of addresses, not their order', () => {
    const a = new AggregatorPool('c-7', () => new Backoff({ initialDelayMs: 1, maxDelayMs: 1 }, () => 0));
    const b = new AggregatorPool('c-7', () => new Backoff({ initialDelayMs: 1, maxDelayMs: 1 }, () => 0));
    a.setTargets(targets(5));
    b.setTargets([...targets(5)].reverse());
    expect(a.ranking().map((t) => t.address)).toEqual(b.ranking().map((t) => t.address));
    expect(new Set(a.ranking().map((t) => t.address)).size).toBe(5);
  });

  it('a failed address cools down for its backoff, growing with consecutive failures, and is skipped until then; an OK ack clears it', () => {
    const p = pool('c-1');
    const preferred = first(p);
    // random() = 1: each delay is its attempt's ceiling, 100 × 2^failures.
    expect(p.markFailed(preferred, 1000)).toBe(100);
    expect(p.pick(1099)?.address).not.toBe(preferred);
    expect(p.pick(1100)?.address).toBe(preferred);
    expect(p.markFailed(preferred, 2000)).toBe(200);
    expect(p.pick(2199)?.address).not.toBe(preferred);
    expect(p.failuresOf(preferred)).toBe(2);
    p.markGood(preferred);
    expect(p.failuresOf(preferred)).toBe(0);
    expect(p.pick(2001)?.address).toBe(preferred);
    expect(p.markFailed(preferred, 3000)).toBe(100);
  });

  it('every address cooling: nothing to pick until the first is ready again; a minimum cool-down is kept', () => {
    const p = pool('c-2', 2);
    for (const t of p.ranking()) p.markFailed(t.address, 0, 5000);
    expect(p.pick(4999)).toBeUndefined();
    expect(p.nextReadyAt()).toBe(5000);
    expect(p.pick(5000)).toBeDefined();
  });

  it('addresses that leave the answer are forgotten (with their failures); duplicates collapse', () => {
    const p = pool('c-3');
    p.markFailed('10.0.0.2:8000', 0);
    p.setTargets([...targets(2), ...targets(2)]);
    expect(p.size).toBe(2);
    p.setTargets(targets(1));
    expect(p.has('10.0.0.2:8000')).toBe(false);
    p.setTargets(targets(3));
    expect(p.failuresOf('10.0.0.2:8000')).toBe(0);
    p.setTargets([]);
    expect(p.pick(0)).toBeUndefined();
    expect(p.nextReadyAt()).toBeUndefined();
  });

  it('jumpHash: in range, and growing the buckets from n to n+1 moves about 1/(n+1) of the keys', () => {
    let moved = 0;
    for (let k = 0n; k < 3000n; k++) {
      const a = jumpHash(k * 7919n, 9);
      const b = jumpHash(k * 7919n, 10);
      expect(a).toBeGreaterThanOrEqual(0);
      expect(a).toBeLessThan(9);
      if (a !== b) {
        moved++;
        expect(b).toBe(9);
      }
    }
    expect(Math.abs(moved - 300)).toBeLessThan(60);
  });
});

import { describe, expect, it } from 'vitest';
import { DestinationTracker } from '../../src/aeron/destination-tracker.js';

describe('DestinationTracker (where a publication sends)', () => {
  const addresses = (t: DestinationTracker): string[] => t.targets.map((d) => `${d.address}:${d.port}`);

  it('dynamic: an SM from an unknown receiver adds where it spoke from; a silent one is dropped after the timeout', () => {
    const t = new DestinationTracker('dynamic', 5000, [], 0);
    expect(addresses(t)).toEqual([]);
    t.onStatusMessage(7n, '10.0.0.1', 4001, 10);
    t.onStatusMessage(8n, '10.0.0.2', 4001, 20);
    t.onStatusMessage(7n, '10.0.0.1', 4001, 3000);
    expect(addresses(t)).toEqual(['10.0.0.1:4001', '10.0.0.2:4001']);
    expect(t.expire(5019)).toBe(0);
    expect(t.expire(5021)).toBe(1);
    expect(addresses(t)).toEqual(['10.0.0.1:4001']);
    expect(t.dueForResolution(99_999)).toEqual([]);
  });

  it('manual: SMs never add a destination; a restarted receiver (new id, same address) is the same destination', () => {
    const t = new DestinationTracker('manual', 5000, [{ host: '10.0.0.1', port: 4001 }, { host: '10.0.0.2', port: 4002 }], 0);
    t.onStatusMessage(7n, '10.0.0.9', 4009, 10);
    expect(addresses(t)).toEqual(['10.0.0.1:4001', '10.0.0.2:4002']);
    t.onStatusMessage(7n, '10.0.0.1', 4001, 10);
    t.onStatusMessage(70n, '10.0.0.1', 4001, 20);
    expect(t.destinations.map((d) => d.receiverId)).toEqual([70n, undefined]);
    expect(t.expire(60_000)).toBe(0);
  });

  it('a named destination resolves at once, and again (once per timeout) while its receiver stays silent', () => {
    const t = new DestinationTracker('single', 5000, [{ host: 'collector.example', port: 4001 }], 0);
    expect(addresses(t)).toEqual([]);
    const [d] = t.dueForResolution(0);
    expect(d?.host).toBe('collector.example');
    t.resolved(d!, '10.0.0.1');
    expect(addresses(t)).toEqual(['10.0.0.1:4001']);
    t.onStatusMessage(1n, '10.0.0.1', 4001, 4000);
    expect(t.dueForResolution(9000)).toEqual([]);
    expect(t.dueForResolution(9001).map((x) => x.host)).toEqual(['collector.example']);
    expect(t.dueForResolution(9002)).toEqual([]);
    t.resolved(d!, '10.0.0.2');
    expect(addresses(t)).toEqual(['10.0.0.2:4001']);
    // IP literals are never looked up.
    expect(new DestinationTracker('manual', 5000, [{ host: '10.0.0.3', port: 1 }], 0).dueForResolution(99_999)).toEqual([]);
  });
});

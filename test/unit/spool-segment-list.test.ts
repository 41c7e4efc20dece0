import { describe, expect, it } from 'vitest';
import { segmentDelivered, segmentStatus } from '../../src/spool/segment-list.js';

describe('segment status (pure)', () => {
  const delivered = { segment: 5, offset: 200, entry: 0 };

  it('pending while any of it is not delivered; retained once delivered and sealed; delivered for the active one', () => {
    expect(segmentStatus(4, 9999, true, delivered)).toBe('retained');
    expect(segmentStatus(5, 200, true, delivered)).toBe('retained');
    expect(segmentStatus(5, 201, true, delivered)).toBe('pending');
    expect(segmentStatus(5, 200, false, delivered)).toBe('delivered');
    expect(segmentStatus(6, 16, false, delivered)).toBe('pending');
  });

  it('a record delivered in part keeps its segment pending', () => {
    expect(segmentDelivered(5, 300, { segment: 5, offset: 250, entry: 3 })).toBe(false);
    expect(segmentDelivered(5, 250, { segment: 5, offset: 250, entry: 0 })).toBe(true);
  });
});

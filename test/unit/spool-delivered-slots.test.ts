import { describe, expect, it } from 'vitest';
import { decodeSlot, encodeSlot, newestSlot } from '../../src/spool/delivered-file.js';

/** A delivered.pos file's bytes with the given slots (undefined: zeros, as never written). */
function file(a: Buffer | undefined, b: Buffer | undefined): Buffer {
  const f = Buffer.alloc(1024);
  a?.copy(f, 0);
  b?.copy(f, 512);
  return f;
}

describe('delivered.pos slots (the persisted delivered position)', () => {
  it('a slot round-trips its position and sequence', () => {
    const p = { segment: 2 ** 40, offset: 123_456_789, entry: 7 };
    expect(decodeSlot(encodeSlot(p, 99))).toEqual({ position: p, sequence: 99 });
  });

  it('the newer valid slot wins, in either place', () => {
    const older = encodeSlot({ segment: 1, offset: 100, entry: 0 }, 4);
    const newer = encodeSlot({ segment: 1, offset: 200, entry: 3 }, 5);
    expect(newestSlot(file(older, newer))?.position).toEqual({ segment: 1, offset: 200, entry: 3 });
    expect(newestSlot(file(newer, older))?.position).toEqual({ segment: 1, offset: 200, entry: 3 });
  });

  it('a torn or damaged slot is ignored: the other (older) one wins; none valid: undefined', () => {
    const older = encodeSlot({ segment: 1, offset: 100, entry: 0 }, 4);
    const newer = encodeSlot({ segment: 1, offset: 200, entry: 3 }, 5);
    for (let at = 0; at < 40; at++) {
      const torn = Buffer.from(newer);
      torn[at] = torn[at]! ^ 0x01;
      expect(newestSlot(file(older, torn))?.position).toEqual({ segment: 1, offset: 100, entry: 0 });
    }
    // Half written: the rest of the slot still holds zeros.
    const half = Buffer.concat([newer.subarray(0, 20), Buffer.alloc(20)]);
    expect(newestSlot(file(half, older))?.sequence).toBe(4);
    expect(newestSlot(file(undefined, undefined))).toBeUndefined();
    expect(decodeSlot(Buffer.alloc(10))).toBeUndefined();
  });
});

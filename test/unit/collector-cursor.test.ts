import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FileCursor } from '../../src/collector/file-cursor.js';
import { EMPTY_EVIDENCE, EMPTY_FINGERPRINT, HASH_WINDOW, extendPrefix, hashBefore } from '../../src/collector/file-identity.js';

const file = Buffer.from('alpha\nbeta\ngamma\ndelta\n');

function cursorAt(offset = 0): FileCursor {
  return new FileCursor('f1', '/logs/a.log', 1, 10, EMPTY_FINGERPRINT, offset, EMPTY_EVIDENCE);
}

/** Reads `file` up to `to` on the cursor, as the tailer does after a cut. */
function readTo(c: FileCursor, to: number): void {
  c.advance(file, 0, to, extendPrefix(c.readPrefix, file, c.readOffset, to, c.readOffset));
}

describe('FileCursor: reading', () => {
  it('advance moves the read offset with the bytes before it and the prefix crc over them', () => {
    const c = cursorAt();
    readTo(c, 6);
    readTo(c, 11);
    expect(c.readOffset).toBe(11);
    expect(c.tailLength).toBe(11);
    expect(c.tailMatches(file.subarray(0, 11))).toBe(true);
    expect(c.tailMatches(Buffer.from('alpha\nbetA\n'))).toBe(false);
    expect(c.readEvidence()).toEqual({ hash: hashBefore(file, 11), hashLength: 11, prefix: extendPrefix({ length: 0, crc: 0 }, file, 0, 11, 0) });
    // The checkpoint has not moved: nothing is acknowledged.
    expect(c.ackedOffset).toBe(0);
  });

  it('the read offset never moves back on one generation', () => {
    const c = cursorAt();
    readTo(c, 11);
    expect(() => c.advance(file, 0, 6, undefined)).toThrow(RangeError);
    expect(c.readOffset).toBe(11);
  });

  it('the tail keeps at most HASH_WINDOW bytes', () => {
    const big = Buffer.alloc(HASH_WINDOW * 3, 'x');
    const c = cursorAt();
    c.advance(big, 0, big.length, undefined);
    expect(c.tailLength).toBe(HASH_WINDOW);
    expect(c.readHash()).toEqual({ hash: hashBefore(big, big.length), length: HASH_WINDOW });
  });

  it('a cursor restored at an offset knows only the hash of the bytes before it, until its tail is loaded', () => {
    const ev = { hash: hashBefore(file, 11), hashLength: 11, prefix: undefined };
    const c = new FileCursor('f1', '/logs/a.log', 1, 10, EMPTY_FINGERPRINT, 11, ev);
    expect(c.tailLength).toBe(0);
    expect(c.readHash()).toEqual({ hash: ev.hash, length: 11 });
    c.loadTail(file.subarray(0, 11));
    expect(c.tailLength).toBe(11);
    expect(c.readHash()).toEqual({ hash: ev.hash, length: 11 });
    c.learnPrefix({ length: 11, crc: 7 });
    c.learnPrefix({ length: 11, crc: 8 });
    expect(c.readPrefix).toEqual({ length: 11, crc: 7 });
  });

  it('startAt makes what is known before the offset the checkpoint evidence too', () => {
    const c = cursorAt(11);
    const prefix = extendPrefix({ length: 0, crc: 0 }, file, 0, 11, 0);
    c.startAt(file.subarray(0, 11), prefix);
    expect(c.ackedOffset).toBe(11);
    expect(c.ackedEvidence).toEqual(c.readEvidence());
    expect(c.ackedEvidence.prefix).toEqual(prefix);
  });

  it('the size seen only grows; a revived cursor starts seeing from its read offset', () => {
    const c = cursorAt();
    readTo(c, 6);
    c.noteSize(100);
    c.noteSize(50);
    expect(c.seenSize).toBe(100);
    c.retire(1234);
    c.markGone();
    expect([c.retired, c.retiredAtMs, c.gone]).toEqual([true, 1234, true]);
    c.revive({ path: '/logs/a.log.1', dev: 2, ino: 20 }, file);
    expect([c.retired, c.gone, c.path, c.dev, c.ino, c.seenSize]).toEqual([false, false, '/logs/a.log.1', 2, 20, 6]);
  });
});

describe('FileCursor: acknowledgements', () => {
  it('ranges acknowledged out of order move the checkpoint only over the contiguous prefix', () => {
    const c = cursorAt();
    const r1 = c.openRange();
    readTo(c, 6);
    r1.extend(6, c.readEvidence(), 1, 5);
    const r2 = c.openRange();
    readTo(c, 11);
    r2.extend(11, c.readEvidence(), 1, 4);
    const r3 = c.openRange();
    readTo(c, 17);
    r3.extend(17, c.readEvidence(), 1, 5);
    expect(c.unackedRanges).toBe(3);
    expect(c.ack(r3)).toEqual({ lines: 0, bytes: 0 });
    expect(c.ack(r2)).toEqual({ lines: 0, bytes: 0 });
    expect(c.ackedOffset).toBe(0);
    expect(c.ack(r1)).toEqual({ lines: 3, bytes: 14 });
    expect(c.ackedOffset).toBe(17);
    expect(c.ackedEvidence).toEqual(r3.evidence);
    expect(c.settled).toBe(true);
  });

  it('an acknowledgement repeated changes nothing; a range of another cursor is refused', () => {
    const c = cursorAt();
    const r1 = c.openRange();
    readTo(c, 6);
    r1.extend(6, c.readEvidence(), 1, 5);
    expect(c.ack(r1)).toEqual({ lines: 1, bytes: 5 });
    expect(c.ack(r1)).toEqual({ lines: 0, bytes: 0 });
    expect(c.ackedOffset).toBe(6);
    const other = cursorAt();
    expect(() => other.ack(r1)).toThrow(RangeError);
  });

  it('a range only grows', () => {
    const c = cursorAt();
    const r = c.openRange();
    r.extend(11, EMPTY_EVIDENCE, 2, 9);
    expect(() => r.extend(6, EMPTY_EVIDENCE, 1, 5)).toThrow(RangeError);
    expect([r.endOffset, r.lines, r.bytes]).toEqual([11, 2, 9]);
  });

  it('property: whatever the acknowledgement order, the checkpoint is the end of the acknowledged prefix and never passes the read offset', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }), fc.array(fc.nat(), { maxLength: 60 }), (sizes, picks) => {
        const c = cursorAt();
        const ranges = sizes.map((n) => {
          const r = c.openRange();
          c.advance(Buffer.alloc(c.readOffset + n, 'x'), 0, c.readOffset + n, undefined);
          r.extend(c.readOffset, c.readEvidence(), 1, n);
          return r;
        });
        const acked = new Set<number>();
        let lines = 0;
        for (const p of picks) {
          const i = p % ranges.length;
          lines += c.ack(ranges[i] as (typeof ranges)[number]).lines;
          acked.add(i);
          let prefix = 0;
          while (acked.has(prefix)) prefix++;
          expect(c.ackedOffset).toBe(prefix === 0 ? 0 : ranges[prefix - 1]?.endOffset);
          expect(c.ackedOffset).toBeLessThanOrEqual(c.readOffset);
          expect(lines).toBe(prefix);
          expect(c.unackedRanges).toBe(ranges.length - prefix);
        }
      }),
      { numRuns: 300 },
    );
  });
});

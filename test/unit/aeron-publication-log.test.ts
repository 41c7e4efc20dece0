import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataFlag, HeaderField, FrameType, align32 } from '../../src/aeron/frame-codec.js';
import { PublicationLog } from '../../src/aeron/publication-log.js';

/** The frame start holding `position`, walked from the term's start (what frameStart did before its index). */
function walkFromTermStart(log: PublicationLog, position: number): number {
  const termStart = position - (position % log.termLength);
  const target = position - termStart;
  const term = log.termFor(position);
  let offset = 0;
  while (offset < target) {
    const frameLength = term.readInt32LE(offset + HeaderField.frameLength);
    if (frameLength <= 0) break;
    const next = offset + (term.readInt16LE(offset + HeaderField.type) === FrameType.Pad ? frameLength : align32(frameLength));
    if (next > target) break;
    offset = next;
  }
  return termStart + offset;
}

/**
 * Appends messages of the generated sizes until the log's tail passes `untilBytes`, then compares
 * frameStart with the walk from the term start at 64 positions of the last half term.
 */
function agreesWithWalk(o: { termLength: number; mtu: number; maxMessage: number; untilBytes: number; messages: { min: number; max: number }; numRuns: number; step: number }): void {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: o.maxMessage }), { minLength: o.messages.min, maxLength: o.messages.max }), fc.integer({ min: 0, max: 1_000_000 }), (sizes, seed) => {
      const log = new PublicationLog(o.termLength, 7, 1, 2, o.mtu);
      const payload = Buffer.alloc(o.maxMessage, 0x61);
      let i = 0;
      while (log.tail < o.untilBytes) log.append(payload, 0, sizes[i++ % sizes.length] as number);
      const lowest = Math.max(0, log.tail - o.termLength / 2);
      for (let k = 0; k < 64; k++) {
        const p = lowest + ((seed + k * o.step) % (log.tail - lowest));
        expect(log.frameStart(p)).toBe(walkFromTermStart(log, p));
      }
    }),
    { numRuns: o.numRuns },
  );
}

describe('PublicationLog.frameStart (the index of frame starts per 64 KiB block)', () => {
  it('finds the same frame start as a walk from the term start, for every position of the last half term, across laps and fragments', () => {
    // Several laps of the three 64 KiB partitions.
    agreesWithWalk({ termLength: 64 * 1024, mtu: 1408, maxMessage: 5000, untilBytes: 9 * 64 * 1024, messages: { min: 50, max: 400 }, numRuns: 60, step: 7919 });
  });

  it('the same with 64 KiB fragments in 1 MiB terms, where a block can hold no frame start of the current lap', () => {
    agreesWithWalk({ termLength: 1024 * 1024, mtu: 65504, maxMessage: 130_000, untilBytes: 7 * 1024 * 1024 + 300_000, messages: { min: 5, max: 60 }, numRuns: 40, step: 104_729 });
  });

  it('in a 1 MiB term the walk starts from the NAKed position\'s block: a frame start is itself, a payload byte maps to its frame', () => {
    const log = new PublicationLog(1024 * 1024, 0, 1, 2, 1408);
    const msg = Buffer.alloc(120, 0x62);
    const starts: number[] = [];
    while (log.tail < 900 * 1024) {
      starts.push(log.tail);
      log.append(msg, 0, msg.length);
    }
    for (const s of starts.slice(-50)) {
      expect(log.frameStart(s)).toBe(s);
      expect(log.frameStart(s + 40)).toBe(s);
    }
    expect(log.termFor(0)[HeaderField.flags]).toBe(DataFlag.Unfragmented);
  });
});

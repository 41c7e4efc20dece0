import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/spool.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { batcherAnswers, batcherOp, confirmedLines, lines, scriptedBatcher } from '../helpers/batcher-fixtures.js';
import { makeBatch, tempDir } from '../helpers/spool-fixtures.js';

// The property of test/unit/batcher-property.test.ts on the real disk spool, small segments: the
// delivered position and the dead-letter file as they land on disk.

async function settle(): Promise<void> {
  // Real file I/O happens between virtual-time steps: give it a moment.
  await new Promise((r) => setTimeout(r, 1));
}

describe('Batcher on the disk spool (property: any appends, timings and emitter answers)', () => {
  it('confirms every entry exactly once, in order, in non-empty batches of at most maxBatchSize', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(batcherOp, { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 12 }), batcherAnswers, async (ops, maxBatchSize, answers) => {
        const t = await tempDir('batcher-prop-');
        const spool = await Spool.open({ dir: t.dir, maxBytes: 1 << 30, segmentBytes: 4096 });
        const { clock, emitter, events, batcher, stop } = scriptedBatcher(spool, answers, maxBatchSize);
        try {
          batcher.start();
          let next = 0;
          for (const o of ops) {
            if (o.kind === 'append') {
              await spool.append(makeBatch(next, o.entries), o.entries);
              next += o.entries;
            } else await clock.advanceAsync(o.ms);
            await settle();
          }
          const done = (): boolean => {
            const st = spool.stats();
            return st.delivered.segment === st.appendPosition.segment && st.delivered.offset === st.appendPosition.offset;
          };
          for (let i = 0; i < 200 && !done(); i++) {
            await clock.advanceAsync(100);
            await settle();
          }
          const all = Array.from({ length: next }, (_, i) => `line-${i}`);
          expect(done()).toBe(true);
          expect(spool.stats().pendingEntries).toBe(0);
          // The delivered position is past every record, empty ones included: a new reader finds nothing.
          await expect(spool.reader().next(AbortSignal.timeout(30))).rejects.toThrow();
          const confirmed = confirmedLines(events);
          expect(confirmed.all).toEqual(all);
          for (const e of events) {
            expect(e.batch.count).toBeGreaterThan(0);
            expect(e.batch.count).toBeLessThanOrEqual(maxBatchSize);
          }
          // Ids: 1, 2, 3, ... per batch; a retry offers the same id again.
          expect(confirmed.ids).toEqual(confirmed.ids.map((_, i) => i + 1));
          const letters = await Spool.readDeadLetters(t.dir);
          expect(letters.flatMap((l) => lines(decodeEntries(l.data)))).toEqual(confirmed.rejected);
          expect(lines(emitter.entries)).toEqual(all.filter((l) => !confirmed.rejected.includes(l)));
          expect(batcher.stats()).toMatchObject({ entries: next, deadLettered: confirmed.rejected.length, pending: 0 });
        } finally {
          await stop();
          await spool.close();
          await t.cleanup();
        }
      }),
      {
        numRuns: 40,
        seed: 9001,
        // An empty record that arrives while the batch before it is in flight must still be delivered.
        examples: [[[{ kind: 'append', entries: 3 }, { kind: 'append', entries: 0 }, { kind: 'advance', ms: 400 }], 3, ['slow']]],
      },
    );
  });
});

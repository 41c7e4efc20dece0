import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemorySpool } from '../../src/spool/memory-spool.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { batcherAnswers, batcherOp, confirmedLines, lines, scriptedBatcher, settle } from '../helpers/batcher-fixtures.js';
import { makeBatch } from '../helpers/spool-fixtures.js';

// Pure and seeded: MemorySpool, virtual time. The same property on the disk spool is in
// test/integration/batcher-spool-property.test.ts.

describe('Batcher (property, in memory: any appends, timings, emitter answers and restart points)', () => {
  it('confirms every entry exactly once, in order, in non-empty batches of at most maxBatchSize whose lines() are their entries()', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(batcherOp, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 12 }),
        batcherAnswers,
        fc.integer({ min: 0, max: 6 }),
        async (ops, maxBatchSize, answers, skip) => {
          // A restart point inside the first record: its first `skip` entries were delivered before.
          const spool = new MemorySpool({ segment: 0, offset: 0, entry: skip });
          const { clock, emitter, events, batcher, stop } = scriptedBatcher(spool, answers, maxBatchSize);
          try {
            batcher.start();
            const expected: string[] = [];
            let next = 0;
            let records = 0;
            for (const o of ops) {
              if (o.kind === 'append') {
                spool.append(makeBatch(next, o.entries), o.entries);
                for (let i = records === 0 ? Math.min(skip, o.entries) : 0; i < o.entries; i++) expected.push(`line-${next + i}`);
                next += o.entries;
                records++;
              } else await clock.advanceAsync(o.ms);
              await settle();
            }
            const end = { segment: 0, offset: records, entry: 0 };
            for (let i = 0; i < 200 && records > 0 && spool.delivered.offset !== records; i++) {
              await clock.advanceAsync(100);
              await settle();
            }
            // Past every record, empty ones included.
            if (records > 0) expect(spool.delivered).toEqual(end);
            const confirmed = confirmedLines(events);
            expect(confirmed.all).toEqual(expected);
            for (const e of events) {
              expect(e.batch.count).toBeGreaterThan(0);
              expect(e.batch.count).toBeLessThanOrEqual(maxBatchSize);
              expect([...e.batch.lines()].map((l) => l.toString('hex'))).toEqual(e.batch.entries().map((x) => x.line.toString('hex')));
            }
            // Ids: 1, 2, 3, ... per batch; a retry offers the same id again.
            expect(confirmed.ids).toEqual(confirmed.ids.map((_, i) => i + 1));
            expect(spool.deadLetters.flatMap((l) => lines(decodeEntries(l.data)))).toEqual(confirmed.rejected);
            expect(lines(emitter.entries)).toEqual(expected.filter((l) => !confirmed.rejected.includes(l)));
            expect(batcher.stats()).toMatchObject({ entries: expected.length, deadLettered: confirmed.rejected.length, pending: 0 });
          } finally {
            await stop();
            spool.close();
          }
        },
      ),
      {
        numRuns: 100,
        seed: 20261130,
        // An empty record that arrives while the batch before it is in flight must still be delivered.
        examples: [[[{ kind: 'append', entries: 3 }, { kind: 'append', entries: 0 }, { kind: 'advance', ms: 400 }], 3, ['slow'], 0]],
      },
    );
  });
});

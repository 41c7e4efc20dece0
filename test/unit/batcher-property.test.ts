import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/batcher/batcher.js';
import type { BatchEvent } from '../../src/batcher/batcher.js';
import { OK, retryable } from '../../src/emitters/emitter.js';
import type { EmitResult } from '../../src/emitters/emitter.js';
import { MemoryEmitter } from '../../src/emitters/memory-emitter.js';
import { Spool } from '../../src/spool/spool.js';
import { sleep } from '../../src/util/clock.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { makeBatch, tempDir } from '../helpers/spool-fixtures.js';

type Op = { kind: 'append'; entries: number } | { kind: 'advance'; ms: number };
type Outcome = 'ok' | 'slow' | 'retry' | 'fatal';

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), entries: fc.integer({ min: 0, max: 25 }) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 700 }) }),
);

async function settle(): Promise<void> {
  // Real file I/O happens between virtual-time steps: give it a moment.
  await new Promise((r) => setTimeout(r, 1));
}

describe('Batcher (property: any appends, timings and emitter answers)', () => {
  it('confirms every entry exactly once, in order, in non-empty batches of at most maxBatchSize', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.constantFrom<Outcome>('ok', 'slow', 'slow', 'retry', 'fatal'), { maxLength: 30 }),
        async (ops, maxBatchSize, outcomes) => {
          const t = await tempDir('batcher-prop-');
          const spool = await Spool.open({ dir: t.dir, maxBytes: 1 << 30, segmentBytes: 4096 });
          const clock = new ManualClock();
          let answer = 0;
          const emitter = new MemoryEmitter(async (batch): Promise<EmitResult> => {
            const o = outcomes[answer++] ?? 'ok';
            if (o === 'slow') {
              // In flight across virtual time, so appends land while it is.
              await sleep(clock, 300);
              return OK;
            }
            if (o === 'retry') return retryable(new Error('try later'));
            if (o === 'fatal') return { kind: 'fatal', error: new Error('never'), rejected: [batch.count - 1] };
            return OK;
          });
          const events: BatchEvent[] = [];
          const batcher = new Batcher({ spool, emitter, maxBatchSize, maxDelayMs: 500, clock, onBatch: (e) => events.push(e) });
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
            const confirmed = events.filter((e) => e.result.kind !== 'retryable');
            expect(confirmed.flatMap((e) => e.batch.entries().map((x) => x.line.toString()))).toEqual(all);
            for (const e of events) {
              expect(e.batch.count).toBeGreaterThan(0);
              expect(e.batch.count).toBeLessThanOrEqual(maxBatchSize);
            }
            // Ids: 1, 2, 3, ... per batch; a retry offers the same id again.
            expect(confirmed.map((e) => e.batch.id)).toEqual(confirmed.map((_, i) => i + 1));
            const letters = await Spool.readDeadLetters(t.dir);
            const lettered = letters.flatMap((l) => decodeEntries(l.data).map((x) => x.line.toString()));
            const rejected = confirmed.filter((e) => e.result.kind === 'fatal').map((e) => e.batch.entries().at(-1)!.line.toString());
            expect(lettered).toEqual(rejected);
            expect(emitter.entries.map((x) => x.line.toString())).toEqual(all.filter((l) => !rejected.includes(l)));
            expect(batcher.stats()).toMatchObject({ entries: next, deadLettered: rejected.length, pending: 0 });
          } finally {
            const stopping = batcher.stop(0);
            await clock.advanceAsync(1);
            await stopping;
            await spool.close();
            await t.cleanup();
          }
        },
      ),
      {
        numRuns: 40,
        // An empty record that arrives while the batch before it is in flight must still be delivered.
        examples: [[[{ kind: 'append', entries: 3 }, { kind: 'append', entries: 0 }, { kind: 'advance', ms: 400 }], 3, ['slow']]],
      },
    );
  });
});

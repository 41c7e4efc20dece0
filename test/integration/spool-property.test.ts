import fc from 'fast-check';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/spool.js';
import type { DeliveredPosition, SpoolReader, SpoolRecord } from '../../src/spool/spool.js';
import { tempDir } from '../helpers/spool-fixtures.js';

type Op =
  | { kind: 'append'; sizes: number[] } // concurrent appends (one group commit or a few)
  | { kind: 'deliver'; records: number; entry: number } // read some records, mark delivered mid-record
  | { kind: 'reopen' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('append' as const), sizes: fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 8 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('deliver' as const), records: fc.integer({ min: 0, max: 6 }), entry: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

interface Model {
  /** Every appended record, in order: [id, entryCount]. */
  readonly records: Array<{ id: number; entries: number }>;
  /** Index of the first record not fully delivered, and entries of it delivered. */
  deliveredIndex: number;
  deliveredEntry: number;
}

function payload(id: number, size: number): Buffer {
  const b = Buffer.alloc(Math.max(8, size), id & 0xff);
  b.writeUInt32LE(id, 0);
  b.writeUInt32LE(size, 4);
  return b;
}

async function segmentBytesOnDisk(dir: string): Promise<number> {
  let total = 0;
  for (const n of await readdir(dir)) if (n.endsWith('.seg')) total += (await stat(join(dir, n))).size;
  return total;
}

describe('Spool (property: appends, partial deliveries and reopens in any order)', () => {
  it('hands back exactly the undelivered records, in order, and keeps its byte count true', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const t = await tempDir('spool-prop-');
        const options = { dir: t.dir, maxBytes: 1 << 30, segmentBytes: 4096 };
        let spool = await Spool.open(options);
        let reader: SpoolReader = spool.reader();
        // Records read but not yet delivered, and the model's view of what the reader should return next.
        let readIndex = 0;
        const model: Model = { records: [], deliveredIndex: 0, deliveredEntry: 0 };
        let nextId = 0;
        const read: SpoolRecord[] = [];
        try {
          for (const o of ops) {
            if (o.kind === 'append') {
              const ids = o.sizes.map(() => nextId++);
              await Promise.all(o.sizes.map((size, k) => spool.append(payload(ids[k]!, size), size % 5)));
              o.sizes.forEach((size, k) => model.records.push({ id: ids[k]!, entries: size % 5 }));
            } else if (o.kind === 'deliver') {
              const available = model.records.length - readIndex;
              const n = Math.min(o.records, available);
              for (let i = 0; i < n; i++) {
                const rec = await reader.next(AbortSignal.timeout(2000));
                const expected = model.records[readIndex]!;
                expect(rec.data.readUInt32LE(0)).toBe(expected.id);
                expect(rec.entryCount).toBe(expected.entries);
                expect(rec.skipEntries).toBe(readIndex === model.deliveredIndex ? Math.min(model.deliveredEntry, expected.entries) : 0);
                read.push(rec);
                readIndex++;
              }
              if (n > 0) {
                // Deliver through the last read record minus part of it: `entry` entries of it, or all.
                const last = read[read.length - 1]!;
                const lastIndex = readIndex - 1;
                const entries = model.records[lastIndex]!.entries;
                let position: DeliveredPosition;
                if (o.entry < entries) {
                  position = { ...last.position, entry: o.entry };
                  if (lastIndex > model.deliveredIndex || o.entry > model.deliveredEntry) {
                    model.deliveredIndex = lastIndex;
                    model.deliveredEntry = o.entry;
                  }
                } else {
                  position = { ...last.next, entry: 0 };
                  model.deliveredIndex = lastIndex + 1;
                  model.deliveredEntry = 0;
                }
                spool.markDelivered(position);
              }
            } else {
              await spool.close();
              spool = await Spool.open(options);
              reader = spool.reader();
              readIndex = model.deliveredIndex;
              read.length = 0;
            }
            const pending = model.records.slice(model.deliveredIndex).reduce((s, r) => s + r.entries, 0) - model.deliveredEntry;
            expect(spool.stats().pendingEntries).toBe(Math.max(0, pending));
          }
          await spool.close();
          // Bytes: what the spool says equals the files, after deletions settled on close.
          expect(spool.stats().bytes).toBe(await segmentBytesOnDisk(t.dir));
          // A final reopen reads exactly the undelivered records, then nothing.
          spool = await Spool.open(options);
          expect(spool.stats().bytes).toBe(await segmentBytesOnDisk(t.dir));
          const r = spool.reader();
          for (let i = model.deliveredIndex; i < model.records.length; i++) {
            const rec = await r.next(AbortSignal.timeout(2000));
            expect(rec.data.readUInt32LE(0)).toBe(model.records[i]!.id);
            expect(rec.data.equals(payload(model.records[i]!.id, rec.data.readUInt32LE(4)))).toBe(true);
          }
          await expect(r.next(AbortSignal.timeout(50))).rejects.toThrow();
          // Fully delivered segments are gone: at most the undelivered data plus one segment remains.
          const undeliveredBytes = model.records.slice(model.deliveredIndex).length * (16 + 3000);
          expect(spool.stats().bytes).toBeLessThanOrEqual(undeliveredBytes + 2 * 4096 + 16 + 3016);
        } finally {
          await spool.close();
          await t.cleanup();
        }
      }),
      { numRuns: 60 },
    );
  });
});

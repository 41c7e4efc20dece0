import { describe, expect, it } from 'vitest';
import { arrayBatch } from '../../src/emitters/array-batch.js';
import { formatBatch as formatBatchOf } from '../../src/emitters/aeron-format.js';
import type { AeronDataFormat } from '../../src/config/aeron-config.js';
import type { Batch } from '../../src/emitters/emitter.js';
import type { Entry } from '../../src/wire/entry-batch.js';

const formatBatch = (entries: readonly Entry[], format: AeronDataFormat, max: number): ReturnType<typeof formatBatchOf> => formatBatchOf(arrayBatch(1, entries), format, max);

const source = { collectorId: 'c1', path: '/p', fileId: 'f1' };
const entry = (line: Buffer, offset: number): Entry => ({ line, offset, timeUnixNano: 1_700_000_000_123_456_789n, flags: 0, source, tags: [{ key: 'env', value: 'prod' }] });

describe('Aeron message formats', () => {
  it('raw: the line bytes exactly, oversized entries rejected', () => {
    const entries = [entry(Buffer.from('a'), 0), entry(Buffer.alloc(50), 2), entry(Buffer.from([0xff, 0x00]), 52)];
    const f = formatBatch(entries, 'raw', 10);
    expect(f.rejected).toEqual([1]);
    expect(f.messages).toEqual([Buffer.from('a'), Buffer.from([0xff, 0x00])]);
    expect(f.messages[0]).toBe(entries[0]?.line);
  });

  it('raw reads only the line bytes: no entry objects are built', () => {
    const lines = [Buffer.from('one'), Buffer.from('two')];
    const batch: Batch = {
      id: 7,
      count: 2,
      entries: () => {
        throw new Error('raw must not build entries');
      },
      lines: () => lines,
    };
    const f = formatBatchOf(batch, 'raw', 100);
    expect(f.messages).toEqual(lines);
    expect(f.messages[1]).toBe(lines[1]);
  });

  it('json: line as text, or line_base64 when not UTF-8, with timestamp, source and tags', () => {
    const f = formatBatch([entry(Buffer.from('héllo'), 7), entry(Buffer.from([0xc3, 0x28]), 9)], 'json', 10_000);
    const [a, b] = f.messages.map((m) => JSON.parse(m.toString('utf8')) as Record<string, unknown>);
    expect(a).toMatchObject({ line: 'héllo', timestamp: '2023-11-14T22:13:20.123456789Z', source: { collector_id: 'c1', path: '/p', file_id: 'f1', offset: 7 }, tags: { env: 'prod' } });
    expect(b).toMatchObject({ line_base64: Buffer.from([0xc3, 0x28]).toString('base64') });
    expect(b).not.toHaveProperty('line');
  });

  it('json_batch: one array per batch, split to fit, a lone oversized entry rejected', () => {
    const entries = Array.from({ length: 10 }, (_, i) => entry(Buffer.from(`line ${i}`), i));
    expect(formatBatch(entries, 'json_batch', 1_000_000).messages).toHaveLength(1);
    const withBig = [...entries, entry(Buffer.alloc(5000, 0x61), 99)];
    const f = formatBatch(withBig, 'json_batch', 1000);
    expect(f.rejected).toEqual([10]);
    expect(f.carried?.flat()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    f.messages.forEach((m, k) => {
      expect(m.length).toBeLessThanOrEqual(1000);
      expect((JSON.parse(m.toString('utf8')) as unknown[]).length).toBe(f.carried?.[k]?.length);
    });
  });
});

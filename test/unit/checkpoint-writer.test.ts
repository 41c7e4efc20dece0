import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CheckpointWriter } from '../../src/collector/checkpoint-writer.js';
import type { CheckpointStore } from '../../src/collector/checkpoint-store.js';
import { createCollectorMetrics } from '../../src/telemetry/collector-metrics.js';
import { ManualClock } from '../../src/util/manual-clock.js';

function setup(failFirst = 0): { clock: ManualClock; writer: CheckpointWriter; writes: number[] } {
  const clock = new ManualClock(0);
  const writes: number[] = [];
  let failures = failFirst;
  // The store is the writer's injected dependency; here it only records when it was asked to write.
  const store = {
    save: async (): Promise<void> => {
      if (failures-- > 0) throw new Error('disk full');
      writes.push(clock.now());
    },
  } as unknown as CheckpointStore;
  const writer = new CheckpointWriter({
    store,
    clock,
    log: pino({ level: 'silent' }),
    metrics: createCollectorMetrics({ defaultMetrics: false }),
    intervalMs: 100,
    active: () => [],
    retired: () => [],
  });
  return { clock, writer, writes };
}

describe('CheckpointWriter', () => {
  it('keeps no timer while nothing changed (an idle collector is not woken), and writes a change one interval later', async () => {
    const { clock, writer, writes } = setup();
    writer.start();
    expect(clock.pendingTimers).toBe(0);
    await clock.advanceAsync(1000, 100);
    expect(writes).toEqual([]);
    writer.markDirty();
    expect(clock.pendingTimers).toBe(1);
    await clock.advanceAsync(100);
    expect(writes).toEqual([1100]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('writes at most once per interval while changes keep coming', async () => {
    const { clock, writer, writes } = setup();
    writer.start();
    for (let t = 0; t < 500; t += 10) {
      writer.markDirty();
      await clock.advanceAsync(10);
    }
    expect(writes).toEqual([100, 200, 300, 400, 500]);
    writer.stop();
    expect(clock.pendingTimers).toBe(0);
  });

  it('retries a failed write at the next interval without a new change', async () => {
    const { clock, writer, writes } = setup(1);
    writer.start();
    writer.markDirty();
    await clock.advanceAsync(100);
    expect(writes).toEqual([]);
    await clock.advanceAsync(100);
    expect(writes).toEqual([200]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a change made before start is written one interval after it', async () => {
    const { clock, writer, writes } = setup();
    writer.markDirty();
    expect(clock.pendingTimers).toBe(0);
    writer.start();
    await clock.advanceAsync(100);
    expect(writes).toEqual([100]);
  });
});

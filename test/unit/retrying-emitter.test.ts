import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { BlackholeEmitter } from '../../src/emitters/blackhole-emitter.js';
import type { Batch, EmitResult, Emitter } from '../../src/emitters/emitter.js';
import { OK, retryable } from '../../src/emitters/emitter.js';
import { MemoryEmitter } from '../../src/emitters/memory-emitter.js';
import type { Notifier } from '../../src/emitters/notifier.js';
import { RetryingEmitter } from '../../src/emitters/retrying-emitter.js';
import { ManualClock } from '../../src/util/manual-clock.js';
import { arrayBatch } from '../../src/emitters/array-batch.js';
import { TextEmitter } from '../../src/emitters/text-emitter.js';

class RecordingNotifier implements Notifier {
  readonly calls: string[] = [];
  trigger(error: Error): void {
    this.calls.push(`trigger:${error.message}`);
  }
  resolve(): void {
    this.calls.push('resolve');
  }
  async close(): Promise<void> {}
}

const batch = (id: number): Batch => arrayBatch(id, []);

/** Lets the emit loop reach its next sleep. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

function setup(script: (attempt: number, batch: Batch) => EmitResult, maxRetries = 3) {
  const clock = new ManualClock();
  const notifier = new RecordingNotifier();
  let attempts = 0;
  const inner = new MemoryEmitter((b) => script(attempts++, b));
  const delays: number[] = [];
  const emitter = new RetryingEmitter({
    inner,
    policy: { initialDelayMs: 100, maxDelayMs: 1000 },
    maxRetries,
    notifier,
    clock,
    random: () => 0.5,
    onRetry: (_e, _a, d) => delays.push(d),
  });
  return { clock, notifier, inner, emitter, delays, attempts: () => attempts };
}

describe('retrying emitter (virtual time)', () => {
  it('joins batches exactly when the emitter it wraps does (the file, text and blackhole ones, not Aeron)', () => {
    const wrap = (inner: Emitter): boolean | undefined =>
      new RetryingEmitter({ inner, policy: { initialDelayMs: 1, maxDelayMs: 1 }, maxRetries: 1, notifier: new RecordingNotifier() }).joinsBatches;
    expect(wrap(new BlackholeEmitter())).toBe(true);
    expect(wrap(new TextEmitter({ stream: new PassThrough() }))).toBe(true);
    expect(wrap(new MemoryEmitter(() => ({ kind: 'ok' })))).toBeUndefined();
  });

  it('retries with growing jittered delays and returns the first success', async () => {
    const { clock, emitter, delays, notifier, inner } = setup((n) => (n < 2 ? retryable(new Error(`fail ${n}`)) : OK));
    const result = emitter.emit(batch(1), new AbortController().signal);
    await settle();
    expect(delays).toEqual([100]); // 100 + (100-100)*0.5
    clock.advance(100);
    await settle();
    expect(delays).toEqual([100, 150]); // 100 + (200-100)*0.5
    clock.advance(149);
    await settle();
    expect(inner.batches).toHaveLength(0); // not before its time
    clock.advance(1);
    await settle();
    expect(await result).toEqual(OK);
    expect(inner.batches.map((b) => b.id)).toEqual([1]);
    expect(notifier.calls).toEqual([]); // two failures < maxRetries: no escalation
  });

  it('after maxRetries failures triggers once, keeps retrying at the maximum delay, resolves on the first success', async () => {
    let healthy = false;
    const { clock, emitter, delays, notifier } = setup(() => (healthy ? OK : retryable(new Error('disk gone'))));
    const signal = new AbortController().signal;
    const first = emitter.emit(batch(1), signal);
    for (let i = 0; i < 10; i++) {
      await settle();
      clock.advance(1000);
    }
    await settle();
    expect(notifier.calls).toEqual(['trigger:disk gone']);
    expect(emitter.outage).toBe(true);
    expect(delays.slice(3)).toEqual(Array(delays.length - 3).fill(1000));
    healthy = true;
    clock.advance(1000);
    await settle();
    expect(await first).toEqual(OK);
    expect(notifier.calls).toEqual(['trigger:disk gone', 'resolve']);
    expect(emitter.outage).toBe(false);
  });

  it('one incident per outage, not one per batch', async () => {
    let healthy = false;
    const { clock, emitter, notifier } = setup(() => (healthy ? OK : retryable(new Error('down'))), 2);
    const signal = new AbortController().signal;
    const a = emitter.emit(batch(1), signal);
    const b = emitter.emit(batch(2), signal);
    for (let i = 0; i < 8; i++) {
      await settle();
      clock.advance(1000);
    }
    expect(notifier.calls).toEqual(['trigger:down']);
    healthy = true;
    clock.advance(1000);
    await settle();
    await Promise.all([a, b]);
    expect(notifier.calls).toEqual(['trigger:down', 'resolve']);
    // A later outage is a new incident.
    healthy = false;
    const c = emitter.emit(batch(3), signal);
    for (let i = 0; i < 4; i++) {
      await settle();
      clock.advance(1000);
    }
    healthy = true;
    clock.advance(1000);
    await settle();
    await c;
    expect(notifier.calls).toEqual(['trigger:down', 'resolve', 'trigger:down', 'resolve']);
  });

  it('an abort ends the wait and hands back the retryable result, keeping the batch for later', async () => {
    const { emitter, inner } = setup(() => retryable(new Error('nope')));
    const abort = new AbortController();
    const result = emitter.emit(batch(1), abort.signal);
    await settle();
    abort.abort();
    const r = await result;
    expect(r.kind).toBe('retryable');
    expect(inner.batches).toHaveLength(0);
  });

  it('passes fatal results through (and they end an outage: the emitter is answering)', async () => {
    let n = 0;
    const { clock, emitter, notifier } = setup(
      () => (n++ < 3 ? retryable(new Error('x')) : { kind: 'fatal', error: new Error('too big'), rejected: [0] }),
      1,
    );
    const result = emitter.emit(batch(1), new AbortController().signal);
    for (let i = 0; i < 5; i++) {
      await settle();
      clock.advance(1000);
    }
    expect((await result).kind).toBe('fatal');
    expect(notifier.calls).toEqual(['trigger:x', 'resolve']);
  });

  it('honours an emitter retryAfterMs hint, capped at the maximum delay', async () => {
    const { clock, emitter, delays } = setup((n) => (n === 0 ? retryable(new Error('busy'), 700) : n === 1 ? retryable(new Error('busy'), 99_999) : OK));
    const result = emitter.emit(batch(1), new AbortController().signal);
    await settle();
    clock.advance(700);
    await settle();
    clock.advance(1000);
    await settle();
    expect(await result).toEqual(OK);
    expect(delays).toEqual([700, 1000]);
  });
});

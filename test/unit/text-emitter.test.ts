import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { TextEmitter } from '../../src/emitters/text-emitter.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { buildEntries } from '../helpers/ingest-client.js';
import { arrayBatch } from '../../src/emitters/array-batch.js';

function batchOf(lines: string[]) {
  return arrayBatch(1, decodeEntries(buildEntries(lines.map((l) => ({ data: Buffer.from(l) }))).entries));
}

/** A sink that accepts one write at a time and completes it only when told to. */
class SlowSink extends Writable {
  readonly chunks: Buffer[] = [];
  private pending: Array<() => void> = [];
  constructor() {
    super({ highWaterMark: 4 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    this.pending.push(() => cb());
  }
  release(): void {
    for (const p of this.pending.splice(0)) p();
  }
}

describe('text emitter', () => {
  it('writes raw lines and waits for the stream to drain before confirming', async () => {
    const sink = new SlowSink();
    const e = new TextEmitter({ stream: sink });
    let done = false;
    const result = e.emit(batchOf(['one', 'two']), new AbortController().signal).then((r) => {
      done = true;
      return r;
    });
    for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r)); // every continuation runs; no timer
    expect(done).toBe(false); // write() returned false: back pressure holds the emit
    expect(Buffer.concat(sink.chunks).toString()).toBe('one\ntwo\n');
    sink.release();
    expect(await result).toEqual({ kind: 'ok' });
    await e.close();
  });

  it('json format writes one object per line', async () => {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    const e = new TextEmitter({ stream: sink, format: 'json' });
    expect((await e.emit(batchOf(['a']), new AbortController().signal)).kind).toBe('ok');
    expect(JSON.parse(Buffer.concat(chunks).toString())).toMatchObject({ line: 'a' });
  });

  it('an abort while waiting for drain gives a retryable result', async () => {
    const sink = new SlowSink();
    const e = new TextEmitter({ stream: sink });
    const abort = new AbortController();
    const result = e.emit(batchOf(['blocked']), abort.signal);
    abort.abort();
    expect((await result).kind).toBe('retryable');
  });

  it('a failing stream gives a retryable result', async () => {
    const sink = new Writable({
      write(_c, _e, cb) {
        cb(new Error('EPIPE'));
      },
    });
    sink.on('error', () => undefined);
    const e = new TextEmitter({ stream: sink });
    const r = await e.emit(batchOf(['x']), new AbortController().signal);
    expect(r.kind).toBe('retryable');
  });
});

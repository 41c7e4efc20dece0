import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { disableReadAhead, gateReads } from '../../src/aggregator/grpc-read-ahead.js';

/**
 * Like grpc-js's server call (server-call.ts, ServerDuplexStreamImpl): an object-mode Duplex whose
 * _read asks for the next message (startRead), which arrives asynchronously.
 */
function call(): { stream: Duplex; reads: () => number } {
  let reads = 0;
  let n = 0;
  const stream = new Duplex({
    objectMode: true,
    read() {
      reads++;
      setImmediate(() => stream.push({ sequence: ++n }));
    },
    write(_chunk, _encoding, done) {
      done();
    },
  });
  return { stream, reads: () => reads };
}

async function turns(k: number): Promise<void> {
  for (let i = 0; i < k; i++) await new Promise((r) => setImmediate(r));
}

describe('grpc read-ahead of a paused call', () => {
  it("Node's default: a paused object-mode call still pulls up to 16 messages", async () => {
    const { stream, reads } = call();
    stream.on('data', () => stream.pause());
    await turns(50);
    expect(reads()).toBeGreaterThanOrEqual(16);
    stream.destroy();
  });

  it('without read-ahead a paused call asks for no more messages, and flows again on resume', async () => {
    const { stream, reads } = call();
    disableReadAhead(stream);
    const got: number[] = [];
    stream.on('data', (m: { sequence: number }) => {
      got.push(m.sequence);
      stream.pause();
    });
    await turns(50);
    expect(got).toEqual([1]);
    expect(reads()).toBeLessThanOrEqual(2);
    stream.resume();
    await turns(10);
    expect(got).toEqual([1, 2]);
    stream.destroy();
  });
});

describe('gated reads of a call', () => {
  it('a gated call asks for its next message only when let read, and nothing is read ahead meanwhile', async () => {
    const { stream, reads } = call();
    disableReadAhead(stream);
    let requests = 0;
    const read = gateReads(stream, () => {
      requests++;
    });
    expect(read).toBeDefined();
    const got: number[] = [];
    stream.on('data', (m: { sequence: number }) => got.push(m.sequence));
    await turns(20);
    // Flowing, the call asked once; nothing reached grpc-js (its startRead) until the gate let it.
    expect(requests).toBe(1);
    expect(reads()).toBe(0);
    expect(got).toEqual([]);
    read?.();
    await turns(20);
    expect(got).toEqual([1]);
    expect(reads()).toBe(1);
    // It asked for the next one and waits again.
    expect(requests).toBe(2);
    read?.();
    await turns(20);
    expect(got).toEqual([1, 2]);
    stream.destroy();
  });
});

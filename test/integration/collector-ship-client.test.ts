import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import protobuf from 'protobufjs';
import type { SealedChunk } from '../../src/collector/chunk-builder.js';
import { ShipClient } from '../../src/collector/ship-client.js';
import type { McError } from '../../src/errors.js';
import { systemClock } from '../../src/util/clock.js';
import { EntryBatchWriter, LineFlag, RunHead, decodeEntries, encodeBatchHeader } from '../../src/wire/entry-batch.js';
import { AckCode, findApiProto } from '../../src/wire/grpc-api.js';
import { CONSERVATIVE_LIMITS } from '../../src/wire/ingest-limits.js';
import { LineTime } from '../../src/wire/line-time.js';
import { ScriptedIngestServer } from '../helpers/collector-ingest-server.js';

const chunk = (id: number): SealedChunk => ({ id, payload: Buffer.from(`chunk-${id}`), entryCount: 0, ranges: [] });

let server: ScriptedIngestServer | undefined;
let client: ShipClient | undefined;
afterEach(() => {
  client?.close();
  server?.stop();
  client = undefined;
  server = undefined;
});

function makeClient(port: number, extra: { maxTimes?: number; onFatal?: (e: McError) => void; limitsWaitMs?: number } = {}) {
  const logged: string[] = [];
  const acked: number[] = [];
  const rejected: number[] = [];
  let reconnects = 0;
  const c = new ShipClient({
    addresses: [`127.0.0.1:${port}`],
    key: 'collector-under-test',
    tls: undefined,
    retry: { initialDelayMs: 10, maxDelayMs: 50, maxTimes: extra.maxTimes },
    clock: systemClock,
    random: () => 0.5,
    // Info and above, kept (pino writes each line to this stream).
    logger: pino({ level: 'info' }, { write: (line: string) => logged.push(line) }),
    onAcked: (ch) => acked.push(ch.id),
    onRejected: (ch) => rejected.push(ch.id),
    onFatal: extra.onFatal ?? (() => undefined),
    onReconnect: () => reconnects++,
    limitsWaitMs: extra.limitsWaitMs,
  });
  client = c;
  return { c, acked, rejected, reconnects: () => reconnects, logged };
}

const payloads = (s: ScriptedIngestServer): string[] => s.received.map((r) => r.entries.toString());

describe('ShipClient against a real gRPC server', () => {
  it('sends chunks in order on one stream and completes each on its OK ack', async () => {
    server = new ScriptedIngestServer();
    const { c, acked } = makeClient(await server.start());
    c.start();
    for (let i = 1; i <= 5; i++) c.enqueue(chunk(i));
    expect(await c.waitIdle(10_000)).toBe(true);
    expect(acked).toEqual([1, 2, 3, 4, 5]);
    expect(payloads(server)).toEqual(['chunk-1', 'chunk-2', 'chunk-3', 'chunk-4', 'chunk-5']);
    expect(new Set(server.received.map((r) => r.stream)).size).toBe(1);
    expect(c.unackedBytes).toBe(0);
  });

  it('RESOURCE_EXHAUSTED holds and resends the chunk; nothing is dropped', async () => {
    server = new ScriptedIngestServer();
    let refusals = 0;
    server.reply = (ch) => {
      if (ch.entries.toString() === 'chunk-2' && refusals < 2) {
        refusals++;
        return { code: AckCode.RESOURCE_EXHAUSTED, retryAfterMs: 30 };
      }
      return { code: AckCode.OK };
    };
    const { c, acked, rejected } = makeClient(await server.start());
    c.start();
    for (let i = 1; i <= 3; i++) c.enqueue(chunk(i));
    expect(await c.waitIdle(10_000)).toBe(true);
    expect(acked.sort()).toEqual([1, 2, 3]);
    expect(rejected).toEqual([]);
    expect(payloads(server).filter((p) => p === 'chunk-2')).toHaveLength(3);
  });

  it('INVALID_ARGUMENT drops only that chunk and reports it', async () => {
    server = new ScriptedIngestServer();
    server.reply = (ch) => (ch.entries.toString() === 'chunk-2' ? { code: AckCode.INVALID_ARGUMENT, message: 'bad' } : { code: AckCode.OK });
    const { c, acked, rejected } = makeClient(await server.start());
    c.start();
    for (let i = 1; i <= 3; i++) c.enqueue(chunk(i));
    expect(await c.waitIdle(10_000)).toBe(true);
    expect(acked).toEqual([1, 3]);
    expect(rejected).toEqual([2]);
  });

  it('a stream that ends without acks is replaced and every unacked chunk resent in order', async () => {
    server = new ScriptedIngestServer();
    server.reply = (_ch, index) => (index === 1 ? 'end-stream' : { code: AckCode.OK });
    const { c, acked, reconnects } = makeClient(await server.start());
    c.start();
    for (let i = 1; i <= 4; i++) c.enqueue(chunk(i));
    expect(await c.waitIdle(10_000)).toBe(true);
    expect(acked).toEqual([1, 2, 3, 4]);
    expect(reconnects()).toBeGreaterThanOrEqual(1);
    const second = server.received.filter((r) => r.stream > 1).map((r) => r.entries.toString());
    expect(second[0]).toBe('chunk-2');
    expect(second.filter((p) => p === 'chunk-1')).toEqual([]);
  });

  it('keeps retrying while the server is away, then delivers everything', async () => {
    const probe = new ScriptedIngestServer();
    const port = await probe.start();
    probe.stop();
    const { c, acked } = makeClient(port);
    c.start();
    c.enqueue(chunk(1));
    c.enqueue(chunk(2));
    expect(await c.waitIdle(300)).toBe(false);
    server = new ScriptedIngestServer();
    await server.start(port);
    expect(await c.waitIdle(10_000)).toBe(true);
    expect(acked).toEqual([1, 2]);
  });

  it('gives up after COLLECTOR_RETRY_MAX_TIMES failed attempts', async () => {
    const probe = new ScriptedIngestServer();
    const port = await probe.start();
    probe.stop();
    const fatal = await new Promise<McError>((resolve) => {
      const { c } = makeClient(port, { maxTimes: 2, onFatal: resolve });
      c.start();
      c.enqueue(chunk(1));
    });
    expect(fatal.code).toBe('MC_ERR_NOT_CONNECTED');
    expect(fatal.message).toMatch(/gave up after 2/);
  });

  it('re-cuts a chunk sealed under larger limits into parts within the advertised ones; done when every part is acked', async () => {
    server = new ScriptedIngestServer();
    server.advertise = { ...CONSERVATIVE_LIMITS, maxChunkBytes: 1024, maxLineBytes: 100, maxEntriesPerChunk: 5 };
    const { c, acked } = makeClient(await server.start());
    const w = new EntryBatchWriter(encodeBatchHeader('c', [{ key: 'host', value: 'h' }]));
    const head = new RunHead('/a.log', 'id-1');
    const lines = [Buffer.alloc(450, 0x61), ...Array.from({ length: 12 }, (_, i) => Buffer.from(`line ${i}`))];
    let offset = 0;
    for (const l of lines) {
      w.addLine(head, l, 0, l.length, offset, 1n);
      offset += l.length + 1;
    }
    const longestLine = w.longestLine;
    const payload = w.finish();
    c.start();
    c.enqueue({ id: 7, payload, entryCount: lines.length, ranges: [], longestLine });
    expect(await c.waitIdle(10_000)).toBe(true);
    expect(acked).toEqual([7]);
    expect(server.received.length).toBeGreaterThan(2);
    const got = server.received.flatMap((r) => {
      expect(r.entries.length).toBeLessThanOrEqual(1024);
      expect(r.entryCount).toBeLessThanOrEqual(5);
      return decodeEntries(r.entries);
    });
    // The 450-byte line as five flagged pieces at contiguous offsets, then the short lines unchanged.
    expect(got.slice(0, 5).map((e) => [e.line.length, e.offset, e.flags])).toEqual([
      [100, 0, LineFlag.Partial],
      [100, 100, LineFlag.Partial],
      [100, 200, LineFlag.Partial],
      [100, 300, LineFlag.Partial],
      [50, 400, LineFlag.PartialLast],
    ]);
    expect(got.slice(5).map((e) => e.line.toString())).toEqual(lines.slice(1).map((l) => l.toString()));
    expect(c.limits.maxLineBytes).toBe(100);
  });

  it('sends a chunk of LineBlocks as built to an aggregator that reads them, and re-cut into Lines to one that does not', async () => {
    const w = new EntryBatchWriter(encodeBatchHeader('c', [{ key: 'host', value: 'h' }]), { lineBlocks: true });
    const head = new RunHead('/a.log', 'id-1');
    const text = Buffer.from(Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join(''));
    for (let pos = 0; pos < text.length; ) {
      const nl = text.indexOf(0x0a, pos);
      w.append(head, text, pos, nl, pos, LineTime.fromMillis(1));
      pos = nl + 1;
    }
    const batch = w.finishView();
    expect(batch.lineBlocks).toBe(true);
    const EntryBatch = protobuf.loadSync(findApiProto()).lookupType('megacollector.v1.EntryBatch');
    const shape = (b: Buffer): number[] => {
      const d = EntryBatch.toObject(EntryBatch.decode(b)) as { runs: Array<{ lines?: unknown[]; blocks?: unknown[] }> };
      return d.runs.flatMap((r) => [r.lines?.length ?? 0, r.blocks?.length ?? 0]);
    };
    const expected = decodeEntries(batch.payload).map((e) => [e.line.toString(), e.offset]);
    for (const lineBlocks of [true, false]) {
      server = new ScriptedIngestServer();
      server.advertise = { ...CONSERVATIVE_LIMITS, lineBlocks };
      const { c, acked, logged } = makeClient(await server.start());
      c.start();
      c.enqueue({ id: 3, payload: batch.payload, entryCount: 50, ranges: [], longestLine: w.longestLine, lineBlocks: true });
      expect(await c.waitIdle(10_000)).toBe(true);
      expect(acked).toEqual([3]);
      expect(c.limits.lineBlocks).toBe(lineBlocks);
      const sent = server.received.map((r) => r.entries);
      expect(sent.flatMap((b) => decodeEntries(b).map((e) => [e.line.toString(), e.offset]))).toEqual(expected);
      // One block of 50 lines as built, or 50 Lines and no block.
      expect(sent.map(shape)).toEqual(lineBlocks ? [[0, 1]] : [[50, 0]]);
      // Said once, at info, for an aggregator that does not read blocks; the re-cut itself is not logged at info.
      expect(logged.filter((l) => l.includes('does not read LineBlocks'))).toHaveLength(lineBlocks ? 0 : 1);
      expect(logged.filter((l) => l.includes('re-cut'))).toHaveLength(lineBlocks ? 0 : 1);
      c.close();
      server.stop();
      server = undefined;
    }
  });

  it('waits for the limits before sending; from an aggregator that advertises none, sends within the conservative limits after limitsWaitMs', async () => {
    server = new ScriptedIngestServer();
    server.advertise = undefined;
    const { c, acked } = makeClient(await server.start(), { limitsWaitMs: 300 });
    const big = Buffer.alloc(CONSERVATIVE_LIMITS.maxLineBytes + 10, 0x62);
    const w = new EntryBatchWriter(encodeBatchHeader('c', []));
    w.addLine(new RunHead('/b.log', 'id-2'), big, 0, big.length, 0, 1n);
    const started = Date.now();
    c.start();
    c.enqueue({ id: 1, payload: w.finish(), entryCount: 1, ranges: [], longestLine: big.length });
    expect(await c.waitIdle(10_000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(acked).toEqual([1]);
    expect(c.limits).toEqual(CONSERVATIVE_LIMITS);
    // The line over the conservative 1 MiB went out as two pieces.
    expect(server.received.flatMap((r) => decodeEntries(r.entries)).map((e) => [e.line.length, e.flags])).toEqual([
      [CONSERVATIVE_LIMITS.maxLineBytes, LineFlag.Partial],
      [10, LineFlag.PartialLast],
    ]);
  });
});

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { buildEntries, createIngestClient } from '../helpers/ingest-client.js';
import type { IngestClient } from '../helpers/ingest-client.js';
import { tryWaitFor, waitFor } from '../helpers/wait-for.js';

/** The output file's newline-terminated lines. */
async function linesIn(path: string): Promise<Buffer[]> {
  const data = await readFile(path).catch(() => Buffer.alloc(0));
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = data.indexOf(0x0a); i !== -1; i = data.indexOf(0x0a, start)) {
    lines.push(data.subarray(start, i));
    start = i + 1;
  }
  return lines;
}

/** Polls the output file until it holds `n` newline-terminated lines. */
async function waitForLines(path: string, n: number, timeoutMs = 20_000): Promise<Buffer[]> {
  return waitFor(
    async () => {
      const lines = await linesIn(path);
      return lines.length >= n && lines;
    },
    { timeoutMs, what: `${n} lines in ${path}` },
  );
}

describe('aggregator: gRPC ingest to the file emitter (real process)', () => {
  let dir: string;
  let agg: AggregatorProcess;
  let client: IngestClient;
  const out = (): string => join(dir, 'out.log');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-agg-ingest-'));
    agg = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: join(dir, 'out.log') }),
        AGGREGATOR_MAX_BATCH_SIZE: '10',
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '300ms',
        AGGREGATOR_MAX_LINE_BYTES: '64KiB',
        AGGREGATOR_MAX_CHUNK_BYTES: '1MiB',
      },
    });
    client = createIngestClient(agg.address);
  });

  afterAll(async () => {
    client?.close();
    await agg?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every acked entry exactly once, byte-exact (invalid UTF-8 too), in per-stream order; cuts batches by size and by time', async () => {
    const before = {
      size: await agg.metric('mega_aggregator_batches_emitted_total', { cause: 'size' }),
      time: await agg.metric('mega_aggregator_batches_emitted_total', { cause: 'time' }),
    };
    const a = client.open();
    const b = client.open();
    const expectedA: Buffer[] = [];
    const expectedB: Buffer[] = [];
    // Stream A: 3 chunks of 7 lines with odd bytes; stream B: 2 chunks of 2 lines. 25 entries in all:
    // with batches of 10 at least two are cut by size, and the tail waits for the 300 ms timer.
    for (let c = 0; c < 3; c++) {
      const lines = Array.from({ length: 7 }, (_, i) =>
        Buffer.concat([Buffer.from(`A${c}-${i} `), Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28]), Buffer.from(' tail\r')]),
      );
      expectedA.push(...lines);
      const { entries, entryCount } = buildEntries(lines.map((data) => ({ data })), { collectorId: 'A' });
      a.send({ sequence: c + 1, entries, entryCount });
    }
    for (let c = 0; c < 2; c++) {
      const lines = [Buffer.from(`B${c}-0 héllo`), Buffer.from(`B${c}-1 \t{"json": true}`)];
      expectedB.push(...lines);
      const { entries, entryCount } = buildEntries(lines.map((data) => ({ data })), { collectorId: 'B' });
      b.send({ sequence: 100 + c, entries, entryCount });
    }
    const acksA = await a.waitForAcks(3);
    const acksB = await b.waitForAcks(2);
    expect(acksA.map((x) => [x.sequence, x.code])).toEqual([[1, 'OK'], [2, 'OK'], [3, 'OK']]);
    expect(acksB.map((x) => [x.sequence, x.code])).toEqual([[100, 'OK'], [101, 'OK']]);

    const lines = await waitForLines(out(), 25);
    expect(lines).toHaveLength(25);
    const gotA = lines.filter((l) => l[0] === 0x41);
    const gotB = lines.filter((l) => l[0] === 0x42);
    expect(gotA.map((l) => l.toString('hex'))).toEqual(expectedA.map((l) => l.toString('hex')));
    expect(gotB.map((l) => l.toString('hex'))).toEqual(expectedB.map((l) => l.toString('hex')));

    // A batch is counted when its emit returns, which is after its lines are in the file (and, for the
    // file emitter, after its commit): wait for the time-cut tail's count rather than race it.
    const emitted = async (cause: 'size' | 'time'): Promise<number> => (await agg.metric('mega_aggregator_batches_emitted_total', { cause })) - before[cause];
    await waitFor(async () => (await emitted('time')) >= 1, { timeoutMs: 5000, what: 'the time-cut batch to be counted' });
    const size = await emitted('size');
    const time = await emitted('time');
    expect(size).toBeGreaterThanOrEqual(2);
    expect(time).toBeGreaterThanOrEqual(1);
    expect(size * 10).toBeLessThanOrEqual(25);
    expect(await agg.metric('mega_aggregator_entries_acked_total')).toBeGreaterThanOrEqual(25);
    expect(await agg.metric('mega_aggregator_entries_emitted_total')).toBeGreaterThanOrEqual(25);
    await a.finish();
    await b.finish();
  });

  it('answers malformed and oversized chunks with INVALID_ARGUMENT (a too-long line is a dead letter), keeps the stream open and leaves other streams alone', async () => {
    const bad = client.open();
    const good = client.open();
    const refusedBefore = await agg.metric('mega_aggregator_chunks_refused_total', { reason: 'invalid' });
    const linesBefore = (await waitForLines(out(), 0)).length;

    bad.send({ sequence: 1, entries: Buffer.from([0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), entryCount: 1 }); // garbage
    const ok = buildEntries([{ data: Buffer.from('counted twice?') }]);
    bad.send({ sequence: 2, entries: ok.entries, entryCount: 5 }); // wrong entry_count
    const huge = buildEntries([{ data: Buffer.alloc(100 * 1024, 0x61) }]);
    bad.send({ sequence: 3, entries: huge.entries, entryCount: 1 }); // line over AGGREGATOR_MAX_LINE_BYTES: a dead letter, acked
    const big = buildEntries(Array.from({ length: 40 }, () => ({ data: Buffer.alloc(30 * 1024, 0x62) })));
    bad.send({ sequence: 4, entries: big.entries, entryCount: big.entryCount }); // chunk over AGGREGATOR_MAX_CHUNK_BYTES
    const fine = buildEntries([{ data: Buffer.from('BAD-stream-still-works') }]);
    bad.send({ sequence: 5, entries: fine.entries, entryCount: 1 });
    const g = buildEntries([{ data: Buffer.from('GOOD-stream') }]);
    good.send({ sequence: 1, entries: g.entries, entryCount: 1 });

    const acks = await bad.waitForAcks(5);
    expect(acks.map((x) => [x.sequence, x.code])).toEqual([
      [1, 'INVALID_ARGUMENT'],
      [2, 'INVALID_ARGUMENT'],
      [3, 'OK'],
      [4, 'INVALID_ARGUMENT'],
      [5, 'OK'],
    ]);
    expect(acks[1]?.message).toMatch(/entry_count/);
    expect(acks[3]?.message).toMatch(/exceeds/);
    expect(await agg.metric('mega_aggregator_entries_oversized_total')).toBe(1);
    expect((await good.waitForAcks(1))[0]?.code).toBe('OK');

    const lines = await waitForLines(out(), linesBefore + 2);
    const added = lines.slice(linesBefore).map((l) => l.toString());
    expect(added.sort()).toEqual(['BAD-stream-still-works', 'GOOD-stream']);
    expect((await agg.metric('mega_aggregator_chunks_refused_total', { reason: 'invalid' })) - refusedBefore).toBe(3);
    await bad.finish();
    await good.finish();
  });

  it('serves /metrics, /healthz, /readyz and the gRPC health service', async () => {
    const metrics = await agg.http('/metrics');
    expect(metrics.status).toBe(200);
    for (const name of [
      'mega_aggregator_entries_received_total',
      'mega_aggregator_entries_acked_total',
      'mega_aggregator_entries_emitted_total',
      'mega_aggregator_entries_refused_total',
      'mega_aggregator_spool_bytes',
      'mega_aggregator_emit_retries_total',
      'mega_aggregator_notifications_total',
      'process_cpu_user_seconds_total',
    ]) {
      expect(metrics.body).toContain(name);
    }
    expect(await agg.metric('mega_aggregator_spool_bytes')).toBeGreaterThan(0);
    expect((await agg.http('/healthz')).status).toBe(200);
    expect((await agg.http('/readyz')).status).toBe(200);

    const Health = grpc.makeClientConstructor(healthService as grpc.ServiceDefinition, 'grpc.health.v1.Health');
    const health = new Health(agg.address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
    };
    const check = (service: string): Promise<string | undefined> =>
      new Promise((resolve, reject) => health.check({ service }, (err, res) => (err ? reject(err) : resolve(res?.status))));
    expect(await check('')).toBe('SERVING');
    expect(await check('megacollector.v1.Ingest')).toBe('SERVING');
    health.close();
  });
});

describe('aggregator: text emitter writes to stdout (real process)', () => {
  it('prints each entry as a line on stdout, logs stay on stderr', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mc-agg-text-'));
    const agg = await startAggregator({
      env: { AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), AGGREGATOR_TEXT_CONFIGURATION: 'true', AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms' },
    });
    try {
      const client = createIngestClient(agg.address);
      const stream = client.open();
      const { entries, entryCount } = buildEntries([{ data: Buffer.from('to stdout 1') }, { data: Buffer.from('to stdout 2') }]);
      stream.send({ sequence: 1, entries, entryCount });
      expect((await stream.waitForAcks(1))[0]?.code).toBe('OK');
      await tryWaitFor(() => agg.stdout().toString().includes('to stdout 2'), { timeoutMs: 10_000, intervalMs: 25, what: 'the second line on stdout' });
      expect(agg.stdout().toString()).toBe('to stdout 1\nto stdout 2\n');
      await stream.finish();
      client.close();
      expect(await agg.stop()).toBe(0);
      expect(agg.stdout().toString()).toBe('to stdout 1\nto stdout 2\n');
    } finally {
      await agg.kill();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

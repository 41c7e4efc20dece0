/**
 * Spool throughput: many concurrent appenders (as many gRPC streams would be), group-committed, with
 * a reader that follows and marks delivered (as the batcher does), on a real directory.
 *
 *   npm run build && node dist/bench/spool-bench.js [--dir ./data/spool-bench] [--seconds 3]
 *
 * Prints, per record size and appender count: MiB/s and records/s appended durably, lines/s at 120-byte
 * lines, fsyncs/s (group commits), records per fsync, append latency percentiles, and reader MiB/s.
 * Use a directory on the disk you care about: on tmpfs fsync costs nothing and the numbers mean little.
 */
import { rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Batcher } from '../src/batcher/batcher.js';
import { OK } from '../src/emitters/emitter.js';
import type { Batch, EmitResult, Emitter } from '../src/emitters/emitter.js';
import { Spool } from '../src/spool/spool.js';
import { EntryBatchWriter, RunHead, encodeBatchHeader } from '../src/wire/entry-batch.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: './data/spool-bench' },
    seconds: { type: 'string', default: '3' },
    sizes: { type: 'string', default: '1048576,65536' },
    appenders: { type: 'string', default: '1,16,64' },
    'batcher-lines': { type: 'string', default: '2000000' },
  },
});
const seconds = Number(values.seconds);
const LINE_BYTES = 120;

/** An EntryBatch of 120-byte lines, about `bytes` long. */
function makeRecord(bytes: number): { data: Buffer; entries: number } {
  const w = new EntryBatchWriter(encodeBatchHeader('bench-collector', [{ key: 'host', value: 'bench' }]), bytes + 4096);
  const head = new RunHead('/var/log/bench.log', 'dev:1:ino:1');
  const line = Buffer.alloc(LINE_BYTES - 1, 0x61);
  let offset = 0;
  while (w.byteLength + LINE_BYTES + 16 < bytes) {
    w.addLine(head, line, 0, line.length, offset, 1_700_000_000_000_000_000n);
    offset += LINE_BYTES;
  }
  const entries = w.entryCount;
  return { data: w.finish(), entries };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))] as number;
}

async function scenario(recordBytes: number, appenders: number): Promise<void> {
  const dir = `${values.dir}/${recordBytes}-${appenders}`;
  await rm(dir, { recursive: true, force: true });
  const spool = await Spool.open({ dir, maxBytes: 1024 * 1024 * 1024 });
  const { data, entries } = makeRecord(recordBytes);
  const latencies: number[] = [];
  let stop = false;
  let appended = 0;
  let full = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(seconds * 1e9));

  const appender = async (): Promise<void> => {
    while (!stop) {
      const t0 = process.hrtime.bigint();
      try {
        await spool.append(data, entries);
      } catch (err) {
        if ((err as { code?: string }).code !== 'MC_ERR_SPOOL_FULL') throw err;
        full++;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const t1 = process.hrtime.bigint();
      latencies.push(Number(t1 - t0) / 1e6);
      appended++;
      if (t1 >= deadline) stop = true;
    }
  };

  let readBytes = 0;
  const ac = new AbortController();
  const reader = (async () => {
    const r = spool.reader();
    for (;;) {
      let rec;
      try {
        rec = await r.next(ac.signal);
      } catch {
        return;
      }
      readBytes += rec.data.length;
      spool.markDelivered({ ...rec.next, entry: 0 });
    }
  })();

  await Promise.all(Array.from({ length: appenders }, appender));
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  // Let the reader catch up, then stop it.
  const readStarted = process.hrtime.bigint();
  while (spool.stats().pendingEntries > 0 && Number(process.hrtime.bigint() - readStarted) < 10e9) {
    await new Promise((r) => setTimeout(r, 10));
  }
  ac.abort();
  await reader;
  const stats = spool.stats();
  await spool.close();
  await rm(dir, { recursive: true, force: true });

  const sorted = Float64Array.from(latencies).sort();
  const mib = (appended * (data.length + 16)) / (1024 * 1024);
  console.log(
    [
      `record ${String(Math.round(data.length / 1024)).padStart(5)} KiB`,
      `appenders ${String(appenders).padStart(3)}`,
      `${(mib / elapsed).toFixed(1).padStart(7)} MiB/s`,
      `${(appended / elapsed).toFixed(0).padStart(6)} records/s`,
      `${((appended * entries) / elapsed / 1000).toFixed(0).padStart(5)}k lines/s`,
      `${(stats.groupCommits / elapsed).toFixed(0).padStart(5)} fsyncs/s`,
      `${(appended / Math.max(1, stats.groupCommits)).toFixed(1).padStart(5)} records/fsync`,
      `latency p50 ${percentile(sorted, 0.5).toFixed(1)} p99 ${percentile(sorted, 0.99).toFixed(1)} max ${percentile(sorted, 1).toFixed(1)} ms`,
      `read ${(readBytes / (1024 * 1024) / elapsed).toFixed(1)} MiB/s`,
      full > 0 ? `full ${full}` : '',
    ].join('  '),
  );
}

/**
 * Spool + batcher + an emitter that only counts (decoding every entry, as every real emitter needs):
 * lines/s through the aggregator's back half, appending 64 KiB records from 16 appenders meanwhile.
 */
async function batcherScenario(totalLines: number): Promise<void> {
  const dir = `${values.dir}/batcher`;
  await rm(dir, { recursive: true, force: true });
  const spool = await Spool.open({ dir, maxBytes: 1024 * 1024 * 1024 });
  const { data, entries } = makeRecord(64 * 1024);
  let emitted = 0;
  let lineBytes = 0;
  const emitter: Emitter = {
    name: 'count',
    emit: async (batch: Batch): Promise<EmitResult> => {
      emitted += batch.count;
      for (const line of batch.lines()) lineBytes += line.length;
      return OK;
    },
    close: async () => undefined,
  };
  const batcher = new Batcher({ spool, emitter, maxBatchSize: 1000, maxDelayMs: 1000 });
  const records = Math.ceil(totalLines / entries);
  const started = process.hrtime.bigint();
  batcher.start();
  let next = 0;
  const appender = async (): Promise<void> => {
    while (next < records) {
      next++;
      for (;;) {
        try {
          await spool.append(data, entries);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, appender));
  const appendSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  while (emitted < records * entries) await new Promise((r) => setTimeout(r, 2));
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  await batcher.stop(1000);
  await spool.close();
  await rm(dir, { recursive: true, force: true });
  console.log(
    `spool+batcher: ${emitted} lines of ${LINE_BYTES} B in ${elapsed.toFixed(2)} s = ${(emitted / elapsed / 1000).toFixed(0)}k lines/s ` +
      `(${(lineBytes / elapsed / (1024 * 1024)).toFixed(1)} MiB/s of line bytes; appends alone took ${appendSeconds.toFixed(2)} s)`,
  );
}

async function main(): Promise<void> {
  console.log(`spool bench: ${seconds}s per scenario in ${values.dir}`);
  for (const size of values.sizes.split(',').map(Number)) {
    for (const n of values.appenders.split(',').map(Number)) await scenario(size, n);
  }
  await batcherScenario(Number(values['batcher-lines']));
}

await main();

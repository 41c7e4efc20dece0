/**
 * Micro benchmark of the collector's hot path: cutting lines out of read buffers and encoding them
 * into 1 MiB EntryBatch chunks. Two cases: from memory (cutter + writer + the gRPC Chunk message, as
 * the ship client serializes it) and from a real file through FileTailer (reads by offset, truncation
 * check, chunk sealing, ranges), page cache warm. CPU seconds (user + system) are printed beside the
 * wall time: on a shared machine they are the figure to compare.
 *   node dist/bench/collector-bench.js [lines=1000000] [lineBytes=120]
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkBuilder } from '../src/collector/chunk-builder.js';
import { EMPTY_EVIDENCE, EMPTY_FINGERPRINT } from '../src/collector/file-identity.js';
import { FileCursor } from '../src/collector/file-cursor.js';
import { LineCutter } from '../src/collector/line-cutter.js';
import { FileTailer } from '../src/collector/tail-file.js';
import { systemClock } from '../src/util/clock.js';
import { CHUNK_HEADROOM, CHUNK_TAILROOM, encodeChunkMessage } from '../src/wire/chunk-message.js';
import { EntryBatchWriter, RunHead, encodeBatchHeader } from '../src/wire/entry-batch.js';
import { LineTime } from '../src/wire/line-time.js';
import { positionalArgs } from './positional-args.js';

const [lines, lineBytes] = positionalArgs('usage: node dist/bench/collector-bench.js [lines=1000000] [lineBytes=120]', [
  { name: 'lines', fallback: 1_000_000 },
  { name: 'lineBytes', fallback: 120, min: 23 },
]) as [number, number];
const MiB = 1024 * 1024;

function makeData(): Buffer {
  const buf = Buffer.alloc(lines * lineBytes, 'x');
  for (let i = 0; i < lines; i++) {
    const end = (i + 1) * lineBytes - 1;
    buf.write(String(i).padStart(10, '0'), i * lineBytes, 'latin1');
    buf[end] = 0x0a;
  }
  return buf;
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function report(name: string, seconds: number, cpu: number, chunks: number): void {
  const mib = (lines * lineBytes) / MiB;
  console.log(
    `${name.padEnd(26)} ${lines} lines of ${lineBytes} B in ${seconds.toFixed(3)} s (CPU ${cpu.toFixed(3)} s): ${Math.round(lines / seconds).toLocaleString('en')} lines/s, ${(mib / seconds).toFixed(1)} MiB/s, ${chunks} chunks`,
  );
}

function inMemory(data: Buffer): void {
  const header = encodeBatchHeader('bench-collector', [{ key: 'host', value: 'bench' }]);
  // As the collector's chunk builder writes: runs of plain lines as LineBlocks, settled after each view.
  const writer = new EntryBatchWriter(header, { capacity: CHUNK_HEADROOM + MiB + CHUNK_TAILROOM, headroom: CHUNK_HEADROOM, tailroom: CHUNK_TAILROOM, lineBlocks: true });
  const head = new RunHead('/var/log/bench.log', 'bench-file-id');
  const cutter = new LineCutter({ maxLineBytes: MiB });
  let chunks = 0;
  let bytes = 0;
  const seal = (): void => {
    const count = writer.entryCount;
    const { payload, backing } = writer.finishView();
    bytes += encodeChunkMessage({ sequence: chunks + 1, entries: payload, entryCount: count, backing }).length;
    chunks++;
  };
  const t0 = process.hrtime.bigint();
  const c0 = cpuNow();
  let offset = 0;
  let view = data;
  let viewOffset = 0;
  const time = LineTime.fromMillis(Date.now());
  const out = {
    entry: (s: number, e: number) => {
      if (writer.entryCount > 0 && writer.byteLengthWith(head, e - s, viewOffset + s) > MiB) seal();
      writer.append(head, view, s, e, viewOffset + s, time);
    },
  };
  while (offset < data.length) {
    viewOffset = offset;
    view = data.subarray(offset, Math.min(data.length, offset + MiB));
    offset += cutter.cut(view, 0, out);
    writer.settle();
  }
  if (writer.entryCount > 0) seal();
  report('memory: cut + encode', Number(process.hrtime.bigint() - t0) / 1e9, cpuNow() - c0, chunks);
  if (bytes === 0) throw new Error('nothing encoded');
}

async function fromFile(data: Buffer): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mc-bench-'));
  const path = join(dir, 'bench.log');
  const wfd = openSync(path, 'w');
  writeSync(wfd, data);
  closeSync(wfd);
  const fd = openSync(path, 'r');
  let chunks = 0;
  const builder = new ChunkBuilder(encodeBatchHeader('bench-collector', []), { maxBytes: MiB, timeoutMs: 60_000 }, systemClock, (c) => {
    chunks++;
    for (const r of c.ranges) r.cursor.ack(r);
  });
  const cursor = new FileCursor('bench-file-id', path, 0, 0, EMPTY_FINGERPRINT, 0, EMPTY_EVIDENCE);
  const tailer = new FileTailer(fd, cursor, path, { maxLineBytes: MiB, multilineTimeoutMs: 1000, idleFlushMs: 5000, rotateWaitMs: 5000 }, systemClock);
  const buf = Buffer.allocUnsafe(MiB + 1024);
  const t0 = process.hrtime.bigint();
  const c0 = cpuNow();
  while ((await tailer.step(builder, buf)).status === 'data');
  builder.seal();
  report('file: FileTailer + chunks', Number(process.hrtime.bigint() - t0) / 1e9, cpuNow() - c0, chunks);
  if (cursor.ackedOffset !== data.length) throw new Error(`read ${cursor.ackedOffset} of ${data.length} bytes`);
  builder.close();
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
}

const data = makeData();
inMemory(data);
inMemory(data);
await fromFile(data);

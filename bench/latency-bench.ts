/**
 * End-to-end latency: a writer appends lines at a steady rate, each carrying the time it was written;
 * the real collector ships them to the real aggregator (fsync'd spool, file emitter), and this process
 * watches the output file, stamping each line when it appears. Prints percentiles (the output is
 * polled every 2 ms, so that is the resolution). Every line is numbered and checked: a lost, duplicated
 * or changed line fails the run. Default settings except
 * AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY=100ms (the 15s default would measure the batch timer).
 *
 *   node dist/bench/latency-bench.js [linesPerSecond=20000] [seconds=5]
 */
import { appendFileSync, closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBenchAggregator, startBenchCollector } from './e2e-bench.js';

function now(): number {
  return performance.timeOrigin + performance.now();
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export interface LatencyResult {
  readonly rate: number;
  readonly lines: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

export async function runLatencyBench(rate = 20_000, seconds = 5): Promise<LatencyResult> {
  const dir = mkdtempSync(join(tmpdir(), 'mc-latency-'));
  try {
    const input = join(dir, 'input.log');
    const output = join(dir, 'shipped.log');
    writeFileSync(input, '');
    writeFileSync(output, '');
    const aggregator = await startBenchAggregator(dir, { AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: output }) });
    const collector = await startBenchCollector(dir, input, Number(aggregator.ready.grpcPort));
    const total = rate * seconds;
    const latencies: number[] = [];
    const pad = 'x'.repeat(80);
    let written = 0;
    const start = now();
    // Writer: every 5 ms, append the lines that are due, each with its write time.
    const writer = setInterval(() => {
      const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate));
      if (due <= written) return;
      let text = '';
      const t = now().toFixed(3);
      for (; written < due; written++) text += `${t} ${String(written).padStart(9, '0')} ${pad}\n`;
      appendFileSync(input, text);
    }, 5);
    // Reader: poll the output, stamp every complete line that appeared.
    const fd = openSync(output, 'r');
    const buf = Buffer.alloc(8 << 20);
    let pending = '';
    const arrived = new Uint8Array(total);
    let duplicated = 0;
    let changed = 0;
    let position = 0;
    const deadline = Date.now() + seconds * 1000 + 30_000;
    while (latencies.length < total && Date.now() < deadline) {
      const n = readSync(fd, buf, 0, buf.length, position);
      if (n === 0) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      position += n;
      const seen = now();
      const lines = (pending + buf.toString('latin1', 0, n)).split('\n');
      pending = lines.pop() as string;
      for (const line of lines) {
        // "<write time> <9-digit seq> <80 x>": anything else, or a sequence seen before, fails the run.
        const fields = line.split(' ');
        const seq = Number(fields[1]);
        if (fields.length !== 3 || fields[2] !== pad || !Number.isInteger(seq) || seq < 0 || seq >= total) changed++;
        else if (arrived[seq] === 1) duplicated++;
        else arrived[seq] = 1;
        latencies.push(seen - Number(fields[0]));
      }
    }
    clearInterval(writer);
    closeSync(fd);
    await collector.stop();
    await aggregator.stop();
    if (duplicated > 0 || changed > 0) throw new Error(`latency run is not the written lines: ${duplicated} duplicated, ${changed} changed`);
    if (latencies.length < total) throw new Error(`only ${latencies.length} of ${total} lines arrived`);
    latencies.sort((a, b) => a - b);
    return {
      rate,
      lines: latencies.length,
      p50: percentile(latencies, 50),
      p90: percentile(latencies, 90),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] as number,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatLatency(r: LatencyResult): string {
  return (
    `latency file→…→file at ${r.rate.toLocaleString('en-US')} lines/s (${r.lines.toLocaleString('en-US')} lines): ` +
    `p50 ${r.p50.toFixed(0)} ms, p90 ${r.p90.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms, max ${r.max.toFixed(0)} ms`
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [rate, seconds] = process.argv.slice(2);
  runLatencyBench(Number(rate ?? 20_000), Number(seconds ?? 5))
    .then((r) => console.log(formatLatency(r)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}

/**
 * Us against the tuned rsyslog on the same corpus, in the same run, interleaved (ours, peer, ours,
 * peer, ...), so that whatever else the machine does colours both alike. Every run of either is checked
 * line for line against the corpus; a run that loses, duplicates or changes a line fails the benchmark.
 * Prints medians, the spread, and the ratios the README's performance table quotes.
 *
 *   node dist/bench/compare.js [lines=1000000] [lineBytes=120] [runs=3]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isExact, verifyOutput, writeCorpus } from './corpus.js';
import { runE2eOnInput } from './e2e-bench.js';
import { rsyslogAvailable, runTunedRsyslog } from './rsyslog-tuned.js';
import { median, spread } from './stats.js';
import { positionalArgs } from './positional-args.js';

interface Sample {
  readonly seconds: number;
  /** Both processes (collector + aggregator, or sender + receiver), whole lives, start-up included. */
  readonly cpuSeconds: number;
  /** The part beside the application: our collector, rsyslog's sending daemon. */
  readonly senderCpuSeconds: number;
  /**
   * The same from each process's ready log line (ours: CPU at the end minus CPU at "listening" /
   * "started"); rsyslog's from its start (it starts in a few ms), so equal to its totals.
   */
  readonly cpuAfterReadySeconds: number;
  readonly senderCpuAfterReadySeconds: number;
  readonly senderRssMiB: number;
  readonly receiverRssMiB: number;
}

export async function compare(lines: number, lineBytes: number, runs: number): Promise<boolean> {
  const root = mkdtempSync(join(tmpdir(), 'mc-compare-'));
  try {
    const input = join(root, 'input.log');
    writeCorpus(input, lines, lineBytes);
    const ours: Sample[] = [];
    const peer: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      const oursDir = join(root, `ours-${i}`);
      mkdirSync(oursDir);
      const r = await runE2eOnInput(oursDir, input, lines, lineBytes, 'file');
      ours.push({
        seconds: r.seconds,
        cpuSeconds: r.collectorCpuSeconds + r.aggregatorCpuSeconds,
        senderCpuSeconds: r.collectorCpuSeconds,
        cpuAfterReadySeconds: r.collectorCpuAfterReadySeconds + r.aggregatorCpuAfterReadySeconds,
        senderCpuAfterReadySeconds: r.collectorCpuAfterReadySeconds,
        senderRssMiB: r.collectorPeakRssMiB,
        receiverRssMiB: r.aggregatorPeakRssMiB,
      });
      rmSync(oursDir, { recursive: true, force: true });
      console.log(
        `run ${i + 1} mega-collector: ${r.seconds.toFixed(2)} s, CPU ${(r.collectorCpuSeconds + r.aggregatorCpuSeconds).toFixed(2)} s ` +
          `(after ready ${(r.collectorCpuAfterReadySeconds + r.aggregatorCpuAfterReadySeconds).toFixed(2)} s), exact`,
      );
      if (!rsyslogAvailable()) continue;
      const peerDir = join(root, `peer-${i}`);
      mkdirSync(peerDir);
      const p = await runTunedRsyslog(peerDir, input, lines, lineBytes);
      const count = verifyOutput(p.output, lines, lineBytes);
      if (!isExact(count)) throw new Error(`rsyslog run ${i + 1} is not the corpus: ${JSON.stringify(count)}`);
      peer.push({
        seconds: p.seconds,
        cpuSeconds: p.senderCpuSeconds + p.receiverCpuSeconds,
        senderCpuSeconds: p.senderCpuSeconds,
        cpuAfterReadySeconds: p.senderCpuSeconds + p.receiverCpuSeconds,
        senderCpuAfterReadySeconds: p.senderCpuSeconds,
        senderRssMiB: p.senderPeakRssMiB,
        receiverRssMiB: p.receiverPeakRssMiB,
      });
      rmSync(peerDir, { recursive: true, force: true });
      console.log(`run ${i + 1} rsyslog (tuned): ${p.seconds.toFixed(2)} s, CPU ${(p.senderCpuSeconds + p.receiverCpuSeconds).toFixed(2)} s, exact`);
    }
    const perM = 1_000_000 / lines;
    const row = (name: string, s: readonly Sample[]): string => {
      const secs = s.map((x) => x.seconds);
      return (
        `| ${name} | ${median(secs).toFixed(2)} s (${spread(secs, 2)}) | ${Math.round(lines / median(secs)).toLocaleString('en-US')} | ` +
        `${(median(s.map((x) => x.cpuSeconds)) * perM).toFixed(2)} | ${(median(s.map((x) => x.cpuAfterReadySeconds)) * perM).toFixed(2)} | ` +
        `${(median(s.map((x) => x.senderCpuSeconds)) * perM).toFixed(2)} | ${(median(s.map((x) => x.senderCpuAfterReadySeconds)) * perM).toFixed(2)} | ` +
        `${median(s.map((x) => x.senderRssMiB)).toFixed(0)} / ${median(s.map((x) => x.receiverRssMiB)).toFixed(0)} MiB |`
      );
    };
    console.log(`\n${lines.toLocaleString('en-US')} lines of ${lineBytes} B, ${runs} interleaved runs each, medians (spread):\n`);
    console.log(
      '| shipper | time | lines/s | CPU s per 1M lines (both) | the same after ready (both) | CPU s per 1M lines (sending side) | ' +
        'the same after ready (sending side) | peak RSS sending / receiving |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    console.log(row('mega-collector → aggregator (durable acks) → file', ours));
    if (peer.length === 0) {
      console.log('\n(rsyslog not installed: `apt-get install rsyslog` to compare; no ratios printed)');
      return true;
    }
    console.log(row('rsyslog 8, tuned: imfile → omfwd TCP → imtcp → omfile', peer));
    const m = (s: readonly Sample[], f: (x: Sample) => number): number => median(s.map(f));
    console.log('\nratios (ours / rsyslog; lines/s: higher is better, CPU and RSS: lower is better):');
    console.log(`  lines/s                        ${(m(peer, (x) => x.seconds) / m(ours, (x) => x.seconds)).toFixed(2)}x`);
    console.log(`  CPU, both                      ${(m(ours, (x) => x.cpuSeconds) / m(peer, (x) => x.cpuSeconds)).toFixed(2)}x`);
    console.log(`  CPU after ready, both          ${(m(ours, (x) => x.cpuAfterReadySeconds) / m(peer, (x) => x.cpuAfterReadySeconds)).toFixed(2)}x`);
    console.log(`  CPU, sending side              ${(m(ours, (x) => x.senderCpuSeconds) / m(peer, (x) => x.senderCpuSeconds)).toFixed(2)}x`);
    console.log(`  CPU after ready, sending side  ${(m(ours, (x) => x.senderCpuAfterReadySeconds) / m(peer, (x) => x.senderCpuAfterReadySeconds)).toFixed(2)}x`);
    console.log(`  peak RSS, sending              ${(m(ours, (x) => x.senderRssMiB) / m(peer, (x) => x.senderRssMiB)).toFixed(1)}x`);
    return true;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [lines, lineBytes, runs] = positionalArgs('usage: node dist/bench/compare.js [lines=1000000] [lineBytes=120] [runs=3]', [
    { name: 'lines', fallback: 1_000_000 },
    { name: 'lineBytes', fallback: 120, min: 23 },
    { name: 'runs', fallback: 3 },
  ]);
  compare(lines as number, lineBytes as number, runs as number).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

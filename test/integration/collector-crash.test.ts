import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { checkDelivery, readDelivered } from '../helpers/collector-delivery.js';
import { LogWriter, writeContinuously } from '../helpers/collector-log-writer.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { tryWaitFor } from '../helpers/wait-for.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { restartablePort } from '../helpers/free-port.js';
import { killAndRemove } from '../helpers/tear-down.js';

/**
 * kill -9 of the collector, and separately of the aggregator, at random moments while lines are
 * written and shipped; after restarts nothing is lost, and duplicates are only replays (same
 * identity) of lines past the collector's durable checkpoint. The number of duplicates is reported.
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;
let load: { stop(): Promise<void> } | undefined;

afterEach(async () => {
  // A failed case must not leave its writer appending into the directory removed below.
  await load?.stop();
  load = undefined;
  await killAndRemove([collector, aggregator], dir);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const random = seededRandom();
const randomBetween = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo));


interface Setup {
  readonly logs: string;
  readonly out: string;
  readonly state: string;
  readonly aggregatorEnv: Record<string, string>;
  collectorEnv(address: string): Record<string, string>;
}

function setup(): Setup {
  dir = mkdtempSync(join(tmpdir(), 'mc-crash-'));
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  const out = join(dir, 'out.jsonl');
  const state = join(dir, 'state');
  return {
    logs,
    out,
    state,
    aggregatorEnv: {
      AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
      AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }),
      AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
    },
    collectorEnv: (address) => ({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_REMOTE_ADDRESS: address,
      COLLECTOR_FILES: join(logs, '*.log'),
      COLLECTOR_STATE_DIR: state,
      COLLECTOR_BUFFER_MAX_BYTES: '64KiB',
    }),
  };
}

/** The collector's durable checkpoints; none written yet (killed early) means every file is at 0. */
function checkpointOffsets(state: string): Map<string, number> {
  if (!existsSync(join(state, 'checkpoints.json'))) return new Map();
  const doc = JSON.parse(readFileSync(join(state, 'checkpoints.json'), 'utf8')) as { records: Array<{ fileId: string; offset: number }> };
  return new Map(doc.records.map((r) => [r.fileId, r.offset]));
}

describe('collector and aggregator crashes during shipping', () => {
  it('kill -9 of the collector: no loss; duplicates only past the durable checkpoint', async () => {
    const s = setup();
    const writer = new LogWriter(s.logs);
    writer.append('one', 10);
    writer.append('two', 10);
    aggregator = await startAggregator({ env: s.aggregatorEnv });
    collector = await startCollector(s.collectorEnv(aggregator.address));
    load = writeContinuously(writer);
    const checkpointsAtKill: Array<Map<string, number>> = [];
    for (let i = 0; i < 3; i++) {
      await sleep(randomBetween(300, 900));
      await collector.kill();
      checkpointsAtKill.push(checkpointOffsets(s.state));
      collector = await startCollector(s.collectorEnv(aggregator.address));
    }
    await sleep(300);
    await load.stop();
    const written = writer.written;
    await tryWaitFor(() => new Set(readDelivered(s.out).map((d) => d.line)).size >= written.length, { timeoutMs: 30_000, intervalMs: 200, what: 'every written line delivered' });
    await sleep(300);
    const delivered = readDelivered(s.out);
    const report = checkDelivery(written, delivered);
    console.log(`collector kill -9 x3: ${report.expected} lines written, ${report.delivered} delivered, ${report.duplicates} duplicates (re-sent past the checkpoint)`);
    expect(report.missing.slice(0, 5)).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.foreignDuplicates).toEqual([]);
    expect(report.orderViolations.slice(0, 5)).toEqual([]);
    // Every duplicate is a line at or past the checkpoint a killed collector had made durable.
    const seen = new Set<string>();
    const belowCheckpoint: string[] = [];
    for (const d of delivered) {
      if (!seen.has(d.line)) {
        seen.add(d.line);
        continue;
      }
      const resumable = checkpointsAtKill.some((c) => (c.get(d.fileId) ?? 0) <= d.offset);
      if (!resumable) belowCheckpoint.push(`${d.fileId}@${d.offset}`);
    }
    expect(belowCheckpoint).toEqual([]);
    expect(await collector.stop()).toBe(0);
  });

  it('kill -9 of the aggregator: the collector reconnects and resends; no loss', async () => {
    const s = setup();
    const writer = new LogWriter(s.logs);
    // A port it can come back to: one from port 0 may be handed to another test's program while it is away.
    const address = `127.0.0.1:${await restartablePort()}`;
    aggregator = await startAggregator({ env: { ...s.aggregatorEnv, AGGREGATOR_LISTEN_ADDRESS: address } });
    collector = await startCollector(s.collectorEnv(address));
    load = writeContinuously(writer);
    for (let i = 0; i < 2; i++) {
      await sleep(randomBetween(300, 900));
      await aggregator.kill();
      await sleep(randomBetween(200, 600));
      aggregator = await startAggregator({ env: { ...s.aggregatorEnv, AGGREGATOR_LISTEN_ADDRESS: address } });
    }
    await sleep(300);
    await load.stop();
    const written = writer.written;
    await tryWaitFor(() => new Set(readDelivered(s.out).map((d) => d.line)).size >= written.length, { timeoutMs: 30_000, intervalMs: 200, what: 'every written line delivered' });
    await sleep(300);
    const report = checkDelivery(written, readDelivered(s.out));
    console.log(`aggregator kill -9 x2: ${report.expected} lines written, ${report.delivered} delivered, ${report.duplicates} duplicates (unacknowledged chunks re-sent, spool replay)`);
    expect(report.missing.slice(0, 5)).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.foreignDuplicates).toEqual([]);
    expect(report.orderViolations.slice(0, 5)).toEqual([]);
    expect(await collector.metric('mega_collector_reconnects_total')).toBeGreaterThanOrEqual(2);
    expect(await collector.stop()).toBe(0);
  });
});

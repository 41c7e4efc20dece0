import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runAggregator, startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { LogWriter } from '../helpers/collector-log-writer.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { waitFor } from '../helpers/wait-for.js';
import { killAndRemove } from '../helpers/tear-down.js';

/**
 * `mega-aggregator spool replay` and `spool export`, run as real processes beside a live aggregator
 * (which holds the spool's lock) after a real collector shipped numbered lines and the aggregator
 * delivered them into its file emitter. The live output (JSON, with each entry's time) is the truth
 * the replays are compared with, byte for byte and in order.
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});

interface OutRecord {
  readonly line: string;
  readonly timestamp: string;
  readonly time_unix_nano: string;
  readonly source: { readonly path: string; readonly file_id: string; readonly offset: number };
}

function readOut(path: string): OutRecord[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as OutRecord);
}

const raw = (records: readonly OutRecord[]): string => records.map((r) => `${r.line}\n`).join('');

interface Rig {
  readonly spool: string;
  readonly out: string;
  readonly writer: LogWriter;
  readonly env: Record<string, string>;
  /** Appends lines, waits until the live output has `total` lines, returns the append position then. */
  phase(one: number, two: number): Promise<string>;
}

async function rig(): Promise<Rig> {
  dir = mkdtempSync(join(tmpdir(), 'mc-spool-replay-'));
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  const spool = join(dir, 'spool');
  const out = join(dir, 'live.jsonl');
  const env = { AGGREGATOR_SPOOL_DIR: spool, AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }), AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms' };
  aggregator = await startAggregator({ env });
  collector = await startCollector({
    ...FAST_COLLECTOR_ENV,
    COLLECTOR_REMOTE_ADDRESS: aggregator.address,
    COLLECTOR_FILES: join(logs, '*.log'),
    COLLECTOR_STATE_DIR: join(dir, 'state'),
    COLLECTOR_TAGS: 'team=blue',
  });
  const writer = new LogWriter(logs);
  const phase = async (one: number, two: number): Promise<string> => {
    if (one > 0) writer.append('one', one);
    if (two > 0) writer.append('two', two);
    const total = writer.written.length;
    await waitFor(() => readOut(out).length >= total, { timeoutMs: 20_000, what: `the live output to hold ${total} lines` });
    // Delivered: the live output has every line; the spool's append position is where they end.
    const status = await runAggregator({ AGGREGATOR_SPOOL_DIR: spool }, ['spool', 'status']);
    const m = /appended position: +segment (\d+) offset (\d+)/.exec(status.stdout);
    expect(m, status.stdout + status.stderr).not.toBeNull();
    return `${m?.[1]}:${m?.[2]}`;
  };
  return { spool, out, writer, env, phase };
}

describe('spool replay and export beside a live aggregator', () => {
  it('replays exactly a range by position and by time into a file emitter, byte for byte, in order', async () => {
    const r = await rig();
    const p1 = await r.phase(150, 50);
    const p2 = await r.phase(200, 120);
    await r.phase(100, 0);
    const live = readOut(r.out);
    expect(live.length).toBe(620);
    expect(new Set(live.map((x) => x.line)).size).toBe(620);

    // By position: exactly the second phase's lines.
    const byPosition = join(dir, 'by-position.log');
    const res = await runAggregator(
      { AGGREGATOR_SPOOL_DIR: r.spool, AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: byPosition }) },
      ['spool', 'replay', '--from', p1, '--to', p2],
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^replayed 320 entries/);
    expect(readFileSync(byPosition, 'utf8')).toBe(raw(live.slice(200, 520)));

    // By time: every entry read at or after one entry's time and before another's, through --emitter-config.
    const from = live[230] as OutRecord;
    const to = live[470] as OutRecord;
    const inRange = live.filter((x) => BigInt(x.time_unix_nano) >= BigInt(from.time_unix_nano) && BigInt(x.time_unix_nano) < BigInt(to.time_unix_nano));
    expect(inRange.length).toBeGreaterThan(0);
    expect(inRange.length).toBeLessThan(live.length);
    const byTime = join(dir, 'by-time.log');
    const emitterConfig = join(dir, 'replay-emitter.json');
    writeFileSync(emitterConfig, JSON.stringify({ file: { path: byTime } }));
    const res2 = await runAggregator({ AGGREGATOR_SPOOL_DIR: r.spool }, ['spool', 'replay', '--from', from.timestamp, '--to', to.timestamp, '--emitter-config', emitterConfig]);
    expect(res2.code, res2.stderr).toBe(0);
    expect(readFileSync(byTime, 'utf8')).toBe(raw(inRange));

    // The live aggregator kept its lock and kept delivering, and its output was not touched.
    const lock = JSON.parse(readFileSync(join(r.spool, 'spool.lock'), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(aggregator?.child.pid);
    await r.phase(30, 30);
    const after = readOut(r.out);
    expect(after.length).toBe(680);
    expect(new Set(after.map((x) => x.line)).size).toBe(680);
    expect(await collector?.stop()).toBe(0);
  });

  it('exports a range as raw lines and as JSON; filters by tag and path', async () => {
    const r = await rig();
    const p1 = await r.phase(80, 40);
    const p2 = await r.phase(60, 90);
    await r.phase(10, 10);
    const live = readOut(r.out);
    const second = live.slice(120, 270);

    const rawOut = await runAggregator({ AGGREGATOR_SPOOL_DIR: r.spool }, ['spool', 'export', '--from', p1, '--to', p2]);
    expect(rawOut.code, rawOut.stderr).toBe(0);
    expect(rawOut.stdout).toBe(raw(second));

    const jsonOut = await runAggregator({ AGGREGATOR_SPOOL_DIR: r.spool }, ['spool', 'export', '--from', p1, '--to', p2, '--format', 'json']);
    expect(jsonOut.code, jsonOut.stderr).toBe(0);
    const exported = jsonOut.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as OutRecord);
    // The same documents the live file emitter wrote for those entries (identity, time, tags, line).
    expect(exported).toEqual(second);

    const onlyTwo = await runAggregator({ AGGREGATOR_SPOOL_DIR: r.spool }, ['spool', 'export', '--from', p1, '--path', '**/two.log', '--match', 'team=blue']);
    expect(onlyTwo.code, onlyTwo.stderr).toBe(0);
    expect(onlyTwo.stdout).toBe(raw(live.slice(120).filter((x) => x.source.path.endsWith('/two.log'))));
    const noMatch = await runAggregator({ AGGREGATOR_SPOOL_DIR: r.spool }, ['spool', 'export', '--from', p1, '--match', 'team=red']);
    expect(noMatch.code, noMatch.stderr).toBe(0);
    expect(noMatch.stdout).toBe('');
  });

  it('refuses to replay without an emitter, with a bad range, or from a segment no longer in the spool', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-spool-replay-'));
    const spool = join(dir, 'spool');
    mkdirSync(spool);
    const none = await runAggregator({ AGGREGATOR_SPOOL_DIR: spool }, ['spool', 'replay', '--from', '1:16']);
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toContain('AGGREGATOR_FILE_CONFIGURATION');
    expect(none.stderr).toContain('blackhole');

    const file = { AGGREGATOR_SPOOL_DIR: spool, AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: join(dir, 'r.log') }) };
    const bad = await runAggregator(file, ['spool', 'replay', '--from', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--from');
    const backwards = await runAggregator(file, ['spool', 'replay', '--from', '3:16', '--to', '2:16']);
    expect(backwards.code).toBe(2);
    const unknown = await runAggregator(file, ['spool', 'export', '--from', '1:16', '--bogus', 'x']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--bogus');
    const gone = await runAggregator(file, ['spool', 'replay', '--from', '0:16']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/no longer in the spool/);
  });
});

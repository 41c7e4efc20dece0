import { execFile } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { checkDelivery, readDelivered } from '../helpers/collector-delivery.js';
import { linesOnDisk } from '../helpers/collector-on-disk.js';
import { FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { tryWaitFor } from '../helpers/wait-for.js';
import { killAndRemove } from '../helpers/tear-down.js';

/**
 * Issue 8, case 3: Debian's real `logrotate` with `copytruncate` (own state file and configuration,
 * forced every ~2 s) on 3 files written at ~3k lines/s each, with and without the rotated names in
 * the globs. Lines only the rotated copy holds (written after the collector's last read of the
 * original, before logrotate's copy) are read from the copy under the truncated generation's file
 * id; a copy first seen while short or empty is never sent again under a new file id. The only
 * lines allowed to be missing are those written inside logrotate's own copy-then-truncate window,
 * which are in no file: counted apart.
 */
const execFileAsync = promisify(execFile);
const LOGROTATE = ['/usr/sbin/logrotate', '/sbin/logrotate', '/usr/bin/logrotate'].find((p) => existsSync(p));

let dir: string;
let aggregator: AggregatorProcess | undefined;
let collector: CollectorProcess | undefined;

afterEach(async () => {
  await killAndRemove([collector, aggregator], dir);
});

const STREAMS = ['alpha', 'beta', 'gamma'];

/**
 * Without logrotate installed (a fresh clone with only Node: `npm test` must still pass; `.ci/run`
 * installs it), the same steps in-process: shift the numbered copies, copy the live file to `.1`, then
 * truncate it; the writers keep writing all along.
 */
async function copytruncateInProcess(logs: string): Promise<void> {
  for (const name of readdirSync(logs).filter((n) => n.endsWith('.log'))) {
    const base = join(logs, name);
    for (let i = 99; i >= 1; i--) if (existsSync(`${base}.${i}`)) renameSync(`${base}.${i}`, `${base}.${i + 1}`);
    await copyFile(base, `${base}.1`);
    truncateSync(base, 0);
  }
}

async function run(globRotated: boolean): Promise<void> {
  if (LOGROTATE === undefined) console.log('logrotate is not installed: copytruncate is done in-process (apt-get install logrotate for the real one)');
  dir = mkdtempSync(join(tmpdir(), 'mc-logrotate-'));
  const logs = join(dir, 'logs');
  mkdirSync(logs, { mode: 0o700 });
  const out = join(dir, 'out.jsonl');
  const conf = join(dir, 'logrotate.conf');
  const state = join(dir, 'logrotate.state');
  writeFileSync(conf, `${join(logs, '*.log')} {\n  copytruncate\n  rotate 100\n  compress\n  delaycompress\n  missingok\n}\n`);
  aggregator = await startAggregator({
    env: { AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }), AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms' },
  });
  const written: string[] = [];
  const seq = new Map<string, number>();
  const write = (stream: string, n: number): void => {
    let i = seq.get(stream) ?? 0;
    const lines: string[] = [];
    for (let k = 0; k < n; k++) lines.push(`${stream} ${String(i++).padStart(8, '0')} ${'q'.repeat(40)}`);
    seq.set(stream, i);
    appendFileSync(join(logs, `${stream}.log`), `${lines.join('\n')}\n`);
    written.push(...lines);
  };
  for (const s of STREAMS) write(s, 100);
  const globs = [join(logs, '*.log'), ...(globRotated ? [join(logs, '*.log.[0-9]')] : [])];
  collector = await startCollector({ ...FAST_COLLECTOR_ENV, COLLECTOR_REMOTE_ADDRESS: aggregator.address, COLLECTOR_FILES: globs.join(','), COLLECTOR_STATE_DIR: join(dir, 'state') });
  // ~3k lines/s per file, written every 10 ms while logrotate runs beside (its copy takes time: lines
  // written meanwhile land in the window).
  const writer = setInterval(() => {
    for (const s of STREAMS) write(s, 30);
  }, 10);
  let rotations = 0;
  try {
    const until = Date.now() + 12_000;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 2000));
      if (LOGROTATE === undefined) await copytruncateInProcess(logs);
      else await execFileAsync(LOGROTATE, ['-f', '-s', state, conf]);
      rotations++;
    }
  } finally {
    clearInterval(writer);
  }
  const onDisk = linesOnDisk(logs);
  await tryWaitFor(() => {
    const got = new Set(readDelivered(out).map((d) => d.line));
    for (const l of onDisk) if (!got.has(l)) return false;
    return true;
  }, { timeoutMs: 40_000, intervalMs: 500, what: 'every line on disk delivered' });
  await new Promise((r) => setTimeout(r, 1000));
  const delivered = readDelivered(out);
  const report = checkDelivery(written, delivered);
  const got = new Set(delivered.map((d) => d.line));
  const lost = [...onDisk].filter((l) => !got.has(l));
  const window = written.filter((l) => !onDisk.has(l) && !got.has(l));
  const fromCopies = collector.logs.filter((l) => l.includes('from its rotated copy')).length;
  console.log(
    `logrotate copytruncate (${globRotated ? 'rotated names in the globs' : 'live files only'}): ${rotations} forced rotations, ${written.length} lines written, ${delivered.length} delivered, ` +
      `lost ${lost.length}, in logrotate's copy-then-truncate window (in no file) ${window.length}, duplicates ${report.duplicates} (under another file id: ${report.foreignDuplicates.length}), tails read from rotated copies ${fromCopies}`,
  );
  expect(rotations).toBeGreaterThanOrEqual(4);
  expect(lost.slice(0, 5)).toEqual([]);
  expect(report.foreignDuplicates.slice(0, 5)).toEqual([]);
  expect(report.duplicates).toBe(0);
  expect(report.unexpected).toEqual([]);
  expect(report.orderViolations.slice(0, 5)).toEqual([]);
  expect(await collector.stop()).toBe(0);
}

describe('collector with the real logrotate (copytruncate)', () => {
  it('globs naming only the live files: the unread tail is read from the rotated copy, nothing lost outside logrotate\'s window', async () => {
    await run(false);
  });

  it('globs naming the rotated copies too: a copy keeps the identity of the generation it copies, no duplicates', async () => {
    await run(true);
  });

  it('a copy seen while empty, then while short, is not sent again under a new file id (copytruncate done slowly, as logrotate does for a large file)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-logrotate-'));
    const logs = join(dir, 'logs');
    mkdirSync(logs);
    const out = join(dir, 'out.jsonl');
    const live = join(logs, 'app.log');
    aggregator = await startAggregator({
      env: { AGGREGATOR_SPOOL_DIR: join(dir, 'spool'), AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: out, format: 'json' }), AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms' },
    });
    const written: string[] = [];
    let n = 0;
    const write = (count: number): void => {
      const lines = Array.from({ length: count }, () => `app ${String(n++).padStart(8, '0')} ${'q'.repeat(40)}`);
      appendFileSync(live, `${lines.join('\n')}\n`);
      written.push(...lines);
    };
    write(200);
    collector = await startCollector({ ...FAST_COLLECTOR_ENV, COLLECTOR_REMOTE_ADDRESS: aggregator.address, COLLECTOR_FILES: `${live},${live}.[0-9]`, COLLECTOR_STATE_DIR: join(dir, 'state') });
    for (let round = 1; round <= 3; round++) {
      await tryWaitFor(async () => (await collector?.metric('mega_collector_lines_acknowledged_total')) === written.length, { timeoutMs: 10_000, intervalMs: 50, what: 'every written line acknowledged' });
      write(100);
      // The copy is created empty and filled in pieces while the collector looks, then the original truncated.
      const copy = `${live}.1`;
      if (existsSync(copy)) unlinkSync(copy); // rotate 1: the older copy goes

      const fd = openSync(copy, 'w');
      await new Promise((r) => setTimeout(r, 400));
      const content = readFileSync(live);
      writeSync(fd, content, 0, 300, 0);
      await new Promise((r) => setTimeout(r, 400));
      writeSync(fd, content, 300, content.length - 300, 300);
      closeSync(fd);
      truncateSync(live, 0);
      write(50);
    }
    await tryWaitFor(() => new Set(readDelivered(out).map((d) => d.line)).size >= written.length, { timeoutMs: 20_000, intervalMs: 200, what: 'every written line delivered' });
    await new Promise((r) => setTimeout(r, 1500));
    const report = checkDelivery(written, readDelivered(out));
    console.log(`slow copytruncate with the copy in the globs: ${report.expected} lines written, ${report.delivered} delivered, ${report.missing.length} missing, ${report.duplicates} duplicates (under another file id: ${report.foreignDuplicates.length})`);
    expect(report.missing.slice(0, 5)).toEqual([]);
    expect(report.foreignDuplicates.slice(0, 5)).toEqual([]);
    expect(report.duplicates).toBe(0);
    expect(await collector.stop()).toBe(0);
  });
});

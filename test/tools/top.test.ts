import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGGREGATOR_MAIN, startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { COLLECTOR_MAIN, FAST_COLLECTOR_ENV, startCollector } from '../helpers/collector-process.js';
import type { CollectorProcess } from '../helpers/collector-process.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Issue 11 item 6: `top` in a real terminal (tmux): it draws, refreshes every second from the
 * program's /metrics, and exits with 0 on q and on Ctrl-C. Part of `npm run test:tools` (tools from
 * Debian's packages, installed by .ci/run), so that `npm test` needs nothing but Node.
 */
if (spawnSync('tmux', ['-V']).status !== 0) throw new Error('tmux is required for test/tools/top.test.ts (apt-get install -y tmux; .ci/run installs it)');

describe('top in a real terminal (tmux)', () => {
  let dir: string;
  let agg: AggregatorProcess;
  let col: CollectorProcess;
  const socket = `mc-top-test-${process.pid}`;
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const alive = (session: string): boolean => spawnSync('tmux', ['-L', socket, 'has-session', '-t', session]).status === 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-top-'));
    await mkdir(join(dir, 'logs'));
    agg = await startAggregator({ env: { AGGREGATOR_SPOOL_DIR: join(dir, 'spool') } });
    col = await startCollector({
      ...FAST_COLLECTOR_ENV,
      COLLECTOR_REMOTE_ADDRESS: agg.address,
      COLLECTOR_FILES: join(dir, 'logs', '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state'),
    });
  });

  afterAll(async () => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    await col?.stop();
    await agg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts `top` of a program in a detached 100x40 tmux session; its exit code goes to a file. */
  async function startTop(session: string, main: string, env: Record<string, string>): Promise<string> {
    const codeFile = join(dir, `${session}.code`);
    const script = join(dir, `${session}.sh`);
    const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v}'`);
    await writeFile(script, [...exports, `'${process.execPath}' '${main}' top`, `echo $? > '${codeFile}'`, ''].join('\n'));
    tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '40', `sh '${script}'`);
    return codeFile;
  }

  const screen = (session: string): string => tmux('capture-pane', '-p', '-t', session);

  it('mega-aggregator top draws, refreshes every second with live rates, and quits on q', async () => {
    const session = 'agg';
    const codeFile = await startTop(session, AGGREGATOR_MAIN, {
      AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
      AGGREGATOR_METRICS_ADDRESS: `127.0.0.1:${agg.metricsPort}`,
    });
    await waitFor(() => /lines in \(received\) +\S/.test(screen(session)), { timeoutMs: 15_000, intervalMs: 100, what: 'the first frame', describe: () => screen(session) });
    const first = screen(session);
    expect(first).toContain('mega-aggregator top');
    for (const row of ['open streams', 'spool bytes', 'spool pending entries (lag)', 'emit retries', 'dead letters', 'Aeron publications']) {
      expect(first).toContain(row);
    }
    expect(first).toMatch(/open streams +1\b/);
    const clock = (s: string): string | undefined => /(\d\d:\d\d:\d\d) UTC/.exec(s)?.[1];
    expect(clock(first)).toMatch(/^\d\d:\d\d:\d\d$/);
    // Lines written now show up as a rate on a later frame.
    await writeFile(join(dir, 'logs', 'app.log'), Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n') + '\n');
    await waitFor(() => /lines in \(received\) +[1-9][\d.k]* \/s/.test(screen(session)), { timeoutMs: 15_000, intervalMs: 100, what: 'a frame with a received rate', describe: () => screen(session) });
    // It redraws: a later frame carries a later clock. (Not asserted on the rate frame itself: a slow
    // scrape followed by a quick one can draw two frames within one wall-clock second; CI saw it.)
    await waitFor(() => { const c = clock(screen(session)); return c !== undefined && c !== clock(first); }, { timeoutMs: 5000, intervalMs: 100, what: 'a frame with a later clock', describe: () => screen(session) });
    tmux('send-keys', '-t', session, 'q');
    await waitFor(() => existsSync(codeFile) && readFileSync(codeFile, 'utf8').trim() !== '', { timeoutMs: 10_000, intervalMs: 100, what: 'top to exit', describe: () => screen(session) });
    expect(readFileSync(codeFile, 'utf8').trim()).toBe('0');
    await waitFor(() => !alive(session), { timeoutMs: 5000, intervalMs: 100, what: 'the tmux session to end', describe: () => 'session still alive' });
  });

  it('mega-collector top draws its rows and quits on Ctrl-C', async () => {
    const session = 'col';
    const codeFile = await startTop(session, COLLECTOR_MAIN, {
      COLLECTOR_REMOTE_ADDRESS: agg.address,
      COLLECTOR_FILES: join(dir, 'logs', '*.log'),
      COLLECTOR_STATE_DIR: join(dir, 'state-top'),
      COLLECTOR_METRICS_ADDRESS: `127.0.0.1:${col.metricsPort}`,
    });
    await waitFor(() => /lines in \(read\) +[\d.]/.test(screen(session)), { timeoutMs: 15_000, intervalMs: 100, what: 'the first frame', describe: () => screen(session) });
    const s = screen(session);
    expect(s).toContain('mega-collector top');
    expect(s).toMatch(/connected +1\b/);
    expect(s).toMatch(/open files +1\b/);
    for (const row of ['behind (lag)', 'reconnects (retries)', 'lines dropped']) expect(s).toContain(row);
    tmux('send-keys', '-t', session, 'C-c');
    await waitFor(() => existsSync(codeFile) && readFileSync(codeFile, 'utf8').trim() !== '', { timeoutMs: 10_000, intervalMs: 100, what: 'top to exit', describe: () => screen(session) });
    expect(readFileSync(codeFile, 'utf8').trim()).toBe('0');
  });
});

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { countEntries as count, freeUdpPort, shipEntries as ship } from '../helpers/aeron-pipeline.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * "Delivered" means a subscriber has it (issue #10): the spool's delivered position follows the
 * receiver's status messages, not the publication's log. Real aggregator processes, the real
 * `aeron-receiver` program as the subscriber (stopped with SIGSTOP to stand for a stuck or not yet
 * noticed dead one, killed with SIGKILL), uniquely numbered entries counted lost and duplicated.
 */
const RECEIVER_MAIN = join(REPO_ROOT, 'dist', 'cmd', 'aeron-receiver', 'main.js');
const STREAM = 21;

interface ReceiverProcess {
  readonly child: ChildProcess;
  readonly seen: string[];
}

async function startReceiver(port: number, seen: string[]): Promise<ReceiverProcess> {
  const child = spawn(process.execPath, [RECEIVER_MAIN, `aeron:udp?endpoint=127.0.0.1:${port}`, String(STREAM)], { stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const m = /<<(.*)>>$/.exec(line);
    if (m !== null) seen.push(m[1] as string);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('aeron-receiver did not start')), 15_000);
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (line.startsWith('Subscribing')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, seen };
}

async function killReceiver(r: ReceiverProcess): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  const exited = new Promise((resolve) => r.child.once('exit', resolve));
  r.child.kill('SIGKILL');
  await exited;
}

describe('Aeron emitter: a batch counts as delivered only once a subscriber consumed it (real processes)', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.().catch(() => undefined);
  });

  async function setup() {
    const dir = await mkdtemp(join(tmpdir(), 'mc-aeron-confirm-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const port = await freeUdpPort();
    const env = {
      AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
      AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '20ms',
      AGGREGATOR_MAX_BATCH_SIZE: '100',
      AGGREGATOR_SHUTDOWN_TIMEOUT: '2s',
      AGGREGATOR_AERON_CONFIGURATION: JSON.stringify({ channel: `aeron:udp?endpoint=127.0.0.1:${port}|term-length=1m`, stream_id: STREAM }),
    };
    const start = async (): Promise<AggregatorProcess> => {
      const agg = await startAggregator({ env });
      cleanups.push(() => agg.kill());
      return agg;
    };
    const receiver = async (seen: string[]): Promise<ReceiverProcess> => {
      const r = await startReceiver(port, seen);
      cleanups.push(() => killReceiver(r));
      return r;
    };
    return { start, receiver };
  }

  it('kill -9 of the aggregator while the subscriber is stuck (not yet noticed as dead): lost = 0 after restart', async () => {
    const t = await setup();
    const seen: string[] = [];
    const first = await t.receiver(seen);
    let agg = await t.start();
    await ship(agg, 0, 1000);
    await waitFor(() => count(seen, 1000).lost === 0, { timeoutMs: 30_000, what: 'the first 1000 entries at the subscriber' });
    await waitFor(async () => (await agg.metric('mega_aggregator_spool_pending_entries')) === 0, { timeoutMs: 30_000, what: 'their confirmation' });

    first.child.kill('SIGSTOP');
    await ship(agg, 1000, 3000);
    // Offered into the publication, never consumed: the spool must still hold them.
    await waitFor(async () => (await agg.metric('mega_aggregator_entries_emitted_total')) >= 4000, { timeoutMs: 30_000, what: 'the emit of the rest' });
    await new Promise((r) => setTimeout(r, 500));
    expect(await agg.metric('mega_aggregator_spool_pending_entries')).toBe(3000);
    await agg.kill();
    await killReceiver(first);

    await t.receiver(seen);
    agg = await t.start();
    await waitFor(() => count(seen, 4000).lost === 0, { timeoutMs: 60_000, what: 'every entry at a subscriber' });
    await waitFor(async () => (await agg.metric('mega_aggregator_spool_pending_entries')) === 0, { timeoutMs: 30_000, what: 'every entry confirmed' });
    const c = count(seen, 4000);
    expect(c.lost).toBe(0);
    // Only what the stuck subscriber never consumed may come twice (it consumed none of it).
    expect(c.duplicated).toBeLessThanOrEqual(3000);
    // Those 3000 were sent before the kill and never confirmed: the new process sent them again, counted.
    expect(await agg.metric('mega_aggregator_aeron_restart_resent_entries_total')).toBe(3000);
  });

  it('SIGTERM of the aggregator while the subscriber is stuck keeps the unconsumed batches in the spool; a restart delivers them', async () => {
    const t = await setup();
    const seen: string[] = [];
    const first = await t.receiver(seen);
    let agg = await t.start();
    await ship(agg, 0, 500);
    await waitFor(() => count(seen, 500).lost === 0, { timeoutMs: 30_000, what: 'the first entries at the subscriber' });

    first.child.kill('SIGSTOP');
    await ship(agg, 500, 2000);
    await waitFor(async () => (await agg.metric('mega_aggregator_entries_emitted_total')) >= 2500, { timeoutMs: 30_000, what: 'the emit of the rest' });
    expect(await agg.stop()).toBe(0);
    const stopped = await agg.waitForLog((r) => r.msg === 'stopped');
    expect(stopped.pendingInSpool).toBeGreaterThan(0);

    // The subscriber wakes up (it may now read what the old publication had sent), then the
    // aggregator restarts and sends every unconfirmed batch again.
    first.child.kill('SIGCONT');
    agg = await t.start();
    await waitFor(() => count(seen, 2500).lost === 0, { timeoutMs: 60_000, what: 'every entry at the subscriber' });
    await waitFor(async () => (await agg.metric('mega_aggregator_spool_pending_entries')) === 0, { timeoutMs: 30_000, what: 'every entry confirmed' });
    expect(count(seen, 2500).lost).toBe(0);
  });
});

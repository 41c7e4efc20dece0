import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'vitest';
import { buildEntries, createIngestClient } from '../helpers/ingest-client.js';
import type { Random } from './random.js';
import { encodeChunk, grpcFrame, sendRaw, varint } from './raw-grpc.js';
import { sleep } from './rig.js';
import type { ChaosRig } from './rig.js';
import { chaosRow } from './row.js';
import type { RunOutcome } from './row.js';
import { CHAOS_SECONDS } from './settings.js';
import { writeDuring } from './scenario.js';

/**
 * Hostile gRPC input while a real collector ships: garbage entries, a 19-byte chunk claiming 2^32-1
 * entries, two 16 MB chunks of 8,000,000 empty entries, a message with the compressed flag and no
 * grpc-encoding, and a frame that is not a Chunk at all. The normal lines must all arrive, the aggregator
 * must stay up (healthz 200) with bounded memory, and nothing undecodable or lying may be acknowledged.
 */
const RSS_LIMIT = 512 * 1024 * 1024;

/** An EntryBatch with one run of `n` empty Line messages (2 bytes each), encoded by hand. */
function emptyEntries(n: number): Buffer {
  const path = Buffer.from('/hostile/empty.log');
  const fileId = Buffer.from('hostile-1');
  const lines = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) lines[i * 2] = 0x1a;
  const run = Buffer.concat([Buffer.from([0x0a]), varint(path.length), path, Buffer.from([0x12]), varint(fileId.length), fileId, lines]);
  const id = Buffer.from('hostile');
  return Buffer.concat([Buffer.from([0x0a]), varint(id.length), id, Buffer.from([0x1a]), varint(run.length), run]);
}

function rssOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

async function attack(rig: ChaosRig, random: Random): Promise<{ problems: string[]; note: string }> {
  const problems: string[] = [];
  const agg = rig.aggregator;
  if (agg === undefined) throw new Error('no aggregator');
  let peak = rssOf(agg.child.pid);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssOf(agg.child.pid));
  }, 100);
  const refusedBefore = await agg.metric('mega_aggregator_entries_refused_total');
  const client = createIngestClient(rig.address);
  const stream = client.open();
  let seq = 1;
  const expectRefused = async (what: string, entries: Buffer, entryCount: number): Promise<void> => {
    const before = stream.acks.length;
    stream.send({ sequence: seq++, entries, entryCount });
    try {
      const acks = await stream.waitForAcks(before + 1, 20_000);
      const ack = acks[before];
      if (ack?.code === 'OK') problems.push(`${what} acknowledged OK`);
    } catch {
      // the stream was reset: refused, which is fine
    }
  };
  try {
    const until = Date.now() + CHAOS_SECONDS * 1000;
    const empty = emptyEntries(8_000_000);
    let rounds = 0;
    while (Date.now() < until || rounds === 0) {
      rounds++;
      await expectRefused('garbage entries', randomBytes(random.int(1, 65536)), random.int(1, 1000));
      const one = buildEntries([{ data: Buffer.from('h') }], { collectorId: 'h' });
      await expectRefused('entry_count 2^32-1', one.entries, 2 ** 32 - 1);
      const compressed = await sendRaw(rig.address, grpcFrame(encodeChunk(1, one.entries, 1), true));
      if (compressed.okAcks > 0) problems.push('compressed flag without grpc-encoding acknowledged OK');
      const garbage = await sendRaw(rig.address, grpcFrame(randomBytes(random.int(1, 4096)), false));
      if (garbage.okAcks > 0) problems.push('garbage frame acknowledged OK');
      if (rounds === 1) {
        const before = stream.acks.length;
        stream.send({ sequence: seq++, entries: empty, entryCount: 8_000_000 });
        stream.send({ sequence: seq++, entries: empty, entryCount: 8_000_000 });
        // Their answers (or the stream's end) before going on, so the memory peak is measured.
        await stream.waitForAcks(before + 2, 120_000).catch(() => undefined);
      }
      await sleep(random.ms(100, 500));
    }
    const refused = (await agg.metric('mega_aggregator_entries_refused_total')) - refusedBefore;
    if (refused >= 2 ** 32 - 1) problems.push(`entries_refused_total grew by ${refused} (the client's claim, not what was seen)`);
    await sleep(1000);
    const health = await agg.http('/healthz').catch((err: unknown) => ({ status: `unanswered: ${(err as Error).message}` }));
    const exit = agg.child.exitCode ?? agg.child.signalCode;
    if (exit !== null) problems.push(`aggregator exited (${exit})`);
    else if (health.status !== 200) problems.push(`aggregator /healthz ${health.status}`);
    if (peak > RSS_LIMIT) problems.push(`aggregator RSS peaked at ${Math.round(peak / 2 ** 20)} MiB`);
    return { problems: [...new Set(problems)], note: `${rounds} rounds, aggregator RSS peak ${Math.round(peak / 2 ** 20)} MiB` };
  } finally {
    clearInterval(sampler);
    stream.cancel();
    client.close();
  }
}

function hostile(random: Random, scenario: string): Promise<RunOutcome> {
  return writeDuring({
    scenario,
    random,
    linesPerSecond: 2000,
    tallyOptions: () => ({ allowForeign: true }),
    // Hostile chunks may slow the aggregator down for a while: slow is not lost, so wait longer for progress.
    minQuietMs: 15_000,
    during: ({ rig }) => attack(rig, random),
  });
}

describe('chaos: hostile gRPC input', () => {
  it('hostile gRPC input beside a normal collector', ({ task }) => chaosRow(task, (r) => hostile(r, task.name)));
});

import type { AggregatorProcess } from './aggregator-process.js';
import { restartablePort } from './free-port.js';
import { buildEntries, createIngestClient } from './ingest-client.js';

/**
 * Shared by the Aeron delivery tests (TS receiver and the real C driver): uniquely numbered entries
 * `entry-<n>` shipped over real gRPC, and counting what the subscribers printed.
 */

/** A UDP port on 127.0.0.1 for a channel whose subscriber comes and goes (see free-port.ts). */
export async function freeUdpPort(): Promise<number> {
  return restartablePort('udp');
}

/** The text of entry `n`; every `longEvery`-th one is `longBytes` long (fragmented on the wire). */
export function entryText(n: number, longEvery = 0, longBytes = 5000): string {
  const base = `entry-${n}`;
  return longEvery > 0 && n % longEvery === 0 ? `${base} ${'L'.repeat(longBytes - base.length - 1)}` : base;
}

/** Ships entries [from, from + count) in chunks of 200 and waits for every ack to be OK. */
export async function shipEntries(agg: AggregatorProcess, from: number, count: number, longEvery = 0): Promise<void> {
  const client = createIngestClient(agg.address);
  const stream = client.open();
  let sequence = 0;
  for (let at = from; at < from + count; at += 200) {
    const n = Math.min(200, from + count - at);
    const { entries, entryCount } = buildEntries(Array.from({ length: n }, (_, i) => ({ data: Buffer.from(entryText(at + i, longEvery)) })));
    stream.send({ sequence: ++sequence, entries, entryCount });
  }
  const acks = await stream.waitForAcks(sequence);
  await stream.finish();
  client.close();
  const refused = acks.filter((a) => a.code !== 'OK');
  if (refused.length > 0) throw new Error(`${refused.length} chunks refused: ${JSON.stringify(refused[0])}`);
}


export interface EntryCount {
  readonly lost: number;
  readonly duplicated: number;
  /** Payloads that are no entry of [0, total) as shipped. */
  readonly changed: number;
}

/** Counts `entry-0` … `entry-(total-1)` in what subscribers printed (their payloads, in order seen). */
export function countEntries(seen: readonly string[], total: number, longEvery = 0): EntryCount {
  const hits = new Uint32Array(total);
  let changed = 0;
  for (const s of seen) {
    const m = /^entry-(\d+)/.exec(s);
    const n = m === null ? -1 : Number(m[1]);
    if (n < 0 || n >= total || s !== entryText(n, longEvery)) changed++;
    else hits[n] = (hits[n] as number) + 1;
  }
  let lost = 0;
  let duplicated = 0;
  for (const h of hits) {
    if (h === 0) lost++;
    else duplicated += h - 1;
  }
  return { lost, duplicated, changed };
}

import { createHash } from 'node:crypto';
import type { Backoff } from '../retry/retry.js';

/**
 * Which aggregator a collector ships to, decided without I/O (the addresses come from
 * aggregator-resolver.ts). The first choice is a jump consistent hash (Lamping and Veach) of the
 * collector's key over the addresses in sorted order, so a fleet of collectors spreads evenly and a
 * collector keeps its choice while the set of addresses does not change; the other addresses follow
 * in the collector's own rendezvous order (highest hash of key + address first), so the collectors of
 * a failed aggregator spread over all the others instead of piling onto one.
 *
 * An address that failed (a broken stream, a refused connection, an aggregator going away) cools down
 * for the next delay of its own backoff (src/retry: exponential, full jitter, over its consecutive
 * failures) and is skipped until then; `markGood` (an OK ack) starts its backoff afresh.
 */
export interface AggregatorTarget {
  /** What is dialed: "ip:port", "[v6]:port" or, when not resolved here, "host:port". */
  readonly address: string;
  /** The configured host this address came from (a DNS name, or the address's own host): the TLS name. */
  readonly host: string;
}

interface Failure {
  readonly backoff: Backoff;
  until: number;
}

function hash64(text: string): bigint {
  return createHash('sha256').update(text).digest().readBigUInt64BE(0);
}

const MASK64 = (1n << 64n) - 1n;

/** Jump consistent hash: a bucket in [0, buckets) for `key`; growing the bucket count moves only 1/n of keys. */
export function jumpHash(key: bigint, buckets: number): number {
  let b = -1;
  let j = 0;
  let k = key & MASK64;
  while (j < buckets) {
    b = j;
    k = (k * 2862933555777941757n + 1n) & MASK64;
    j = Math.floor((b + 1) * (2 ** 31 / Number((k >> 33n) + 1n)));
  }
  return b;
}

export class AggregatorPool {
  private targets: readonly AggregatorTarget[] = [];
  private order: readonly AggregatorTarget[] = [];
  private readonly failures = new Map<string, Failure>();
  private readonly keyHash: bigint;

  constructor(
    private readonly key: string,
    /** A fresh backoff for an address that starts failing. */
    private readonly newBackoff: () => Backoff,
  ) {
    this.keyHash = hash64(key);
  }

  /** Replaces the known addresses (duplicates are dropped); failure records of vanished addresses go. */
  setTargets(targets: readonly AggregatorTarget[]): void {
    const byAddress = new Map<string, AggregatorTarget>();
    for (const t of targets) if (!byAddress.has(t.address)) byAddress.set(t.address, t);
    const sorted = [...byAddress.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    this.targets = sorted;
    for (const address of [...this.failures.keys()]) if (!byAddress.has(address)) this.failures.delete(address);
    if (sorted.length === 0) {
      this.order = [];
      return;
    }
    const first = sorted[jumpHash(this.keyHash, sorted.length)] as AggregatorTarget;
    const rest = sorted
      .filter((t) => t !== first)
      .map((t) => ({ t, score: hash64(`${this.key}\n${t.address}`) }))
      .sort((a, b) => (a.score > b.score ? -1 : a.score < b.score ? 1 : 0))
      .map((x) => x.t);
    this.order = [first, ...rest];
  }

  get size(): number {
    return this.targets.length;
  }

  has(address: string): boolean {
    return this.targets.some((t) => t.address === address);
  }

  /** Every address in this collector's order of preference. */
  ranking(): readonly AggregatorTarget[] {
    return this.order;
  }

  /** The most preferred address not cooling down at `now`, if any. */
  pick(now: number): AggregatorTarget | undefined {
    return this.order.find((t) => (this.failures.get(t.address)?.until ?? 0) <= now);
  }

  /** When the first cooling address becomes usable again (undefined: no address known). */
  nextReadyAt(): number | undefined {
    let earliest: number | undefined;
    for (const t of this.order) {
      const until = this.failures.get(t.address)?.until ?? 0;
      if (earliest === undefined || until < earliest) earliest = until;
    }
    return earliest;
  }

  /** Consecutive failures of `address` since its last OK ack. */
  failuresOf(address: string): number {
    return this.failures.get(address)?.backoff.failures ?? 0;
  }

  /** `address` failed: skip it for its next backoff delay, at least `atLeastMs`; returns the delay. */
  markFailed(address: string, now: number, atLeastMs = 0): number {
    let f = this.failures.get(address);
    if (f === undefined) {
      f = { backoff: this.newBackoff(), until: 0 };
      this.failures.set(address, f);
    }
    const delay = Math.max(f.backoff.next(), atLeastMs);
    f.until = now + delay;
    return delay;
  }

  markGood(address: string): void {
    this.failures.delete(address);
  }
}

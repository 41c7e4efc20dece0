/**
 * Retention of delivered segments (AGGREGATOR_SPOOL_RETENTION), as pure decisions: a sealed, fully
 * delivered segment is kept for replay until it is older than `maxAgeMs` (since it was sealed) or the
 * retained segments together are larger than `maxBytes`; the oldest go first. Without a policy nothing
 * is retained. Space for undelivered data always wins: retained segments are evicted, oldest first,
 * when an append needs their room (never an undelivered one: only retained segments are candidates).
 */

export interface RetentionPolicy {
  readonly maxAgeMs?: number;
  readonly maxBytes?: number;
}

export interface RetainedSegment {
  readonly number: number;
  readonly size: number;
  /** When it was sealed (its last append), ms since the epoch. */
  readonly sealedAtMs: number;
}

/** How many of `retained` (oldest first) to drop now. */
export function expiredCount(retained: readonly RetainedSegment[], policy: RetentionPolicy | undefined, nowMs: number): number {
  if (policy === undefined) return retained.length;
  let bytes = retained.reduce((n, s) => n + s.size, 0);
  let drop = 0;
  for (const s of retained) {
    const tooOld = policy.maxAgeMs !== undefined && nowMs - s.sealedAtMs > policy.maxAgeMs;
    const tooBig = policy.maxBytes !== undefined && bytes > policy.maxBytes;
    if (!tooOld && !tooBig) break;
    bytes -= s.size;
    drop++;
  }
  return drop;
}

/** When the oldest of `retained` expires by age (ms since the epoch); undefined when never. */
export function nextExpiryMs(retained: readonly RetainedSegment[], policy: RetentionPolicy | undefined): number | undefined {
  const oldest = retained[0];
  if (policy?.maxAgeMs === undefined || oldest === undefined) return undefined;
  return oldest.sealedAtMs + policy.maxAgeMs;
}

/** How many of `retained` (oldest first) to evict so that `bytesNeeded` are freed; all when they do not suffice. */
export function evictionCount(retained: readonly RetainedSegment[], bytesNeeded: number): number {
  let freed = 0;
  let n = 0;
  while (freed < bytesNeeded && n < retained.length) freed += (retained[n++] as RetainedSegment).size;
  return n;
}

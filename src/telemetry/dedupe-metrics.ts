import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';

/** Where a replay (an entry whose identity was already taken) was recognised and dropped. */
export const REPLAY_STAGES = ['ingest', 'file_emitter'] as const;
export type ReplayStage = (typeof REPLAY_STAGES)[number];

export interface DedupeMetrics {
  /** Entries dropped as replays, by stage. */
  replaysDropped(stage: ReplayStage, entries: number): void;
  /** A (collector, file) forgotten by the ingest's bounded table of accepted offsets. */
  evicted(): void;
}

function counter(registry: Registry | undefined, name: string, help: string, labelNames: string[] = []): Counter<string> {
  const existing = registry?.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<string>;
  return new Counter({ name, help, labelNames, registers: registry === undefined ? [] : [registry] });
}

/**
 * `mega_aggregator_replays_dropped_total{stage}` and `mega_aggregator_dedupe_evictions_total`
 * (exactly-once by entry identity: src/wire/entry-identity.ts). Every stage is present at zero.
 */
export function createDedupeMetrics(registry: Registry | undefined): DedupeMetrics {
  const dropped = counter(
    registry,
    'mega_aggregator_replays_dropped_total',
    'Entries acknowledged or confirmed without being stored again because their identity (collector, file, offset) was already taken, by stage',
    ['stage'],
  );
  for (const stage of REPLAY_STAGES) dropped.labels({ stage }).inc(0);
  const evictions = counter(
    registry,
    'mega_aggregator_dedupe_evictions_total',
    'Files forgotten by the bounded table of accepted offsets per collector and file (their replays would be stored again)',
  );
  return {
    replaysDropped: (stage, entries) => dropped.labels({ stage }).inc(entries),
    evicted: () => evictions.inc(),
  };
}

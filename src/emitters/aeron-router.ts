import picomatch from 'picomatch';
import { Counter } from 'prom-client';
import type { AeronEmitterConfig, AeronOutputConfig } from '../config/aeron-config.js';
import type { Entry } from '../wire/entry-batch.js';
import { AeronEmitter } from './aeron-emitter.js';
import type { AeronEmitterDeps } from './aeron-emitter.js';
import { arrayBatch } from './array-batch.js';
import type { Batch, Confirmation, EmitResult, Emitter } from './emitter.js';

export const AERON_UNROUTED_METRIC = 'mega_aggregator_aeron_entries_unrouted_total';

type Matcher = (entry: Entry) => boolean;

/** The value a filter key names: a tag's value, or for `path` the entry's file path. */
function valueOf(entry: Entry, key: string): string | undefined {
  if (key === 'path') return entry.source.path;
  for (const t of entry.tags) if (t.key === key) return t.value;
  return undefined;
}

function anyMatch(table: Readonly<Record<string, readonly string[]>>): Matcher {
  const tests = Object.entries(table).map(([key, globs]) => ({ key, test: picomatch([...globs], { dot: true }) }));
  return (entry) => tests.some(({ key, test }) => {
    const value = valueOf(entry, key);
    return value !== undefined && test(value);
  });
}

/**
 * Telegraf's tagpass/tagdrop over an entry: with tagpass, it must match one of the listed keys' globs;
 * with tagdrop, it must match none. Undefined when the publication takes every entry.
 */
export function entryFilter(c: Pick<AeronEmitterConfig, 'tagpass' | 'tagdrop'>): Matcher | undefined {
  const pass = c.tagpass === undefined ? undefined : anyMatch(c.tagpass);
  const drop = c.tagdrop === undefined ? undefined : anyMatch(c.tagdrop);
  if (pass === undefined && drop === undefined) return undefined;
  return (entry) => (pass === undefined || pass(entry)) && (drop === undefined || !drop(entry));
}

/** Which entries of a batch (by index) each publication takes; `unrouted` counts those nobody takes. */
export function routeEntries(entries: readonly Entry[], filters: ReadonlyArray<Matcher | undefined>): { taken: number[][]; unrouted: number } {
  const taken = filters.map(() => [] as number[]);
  let unrouted = 0;
  for (let i = 0; i < entries.length; i++) {
    let any = false;
    for (let p = 0; p < filters.length; p++) {
      const f = filters[p];
      if (f === undefined || f(entries[i] as Entry)) {
        (taken[p] as number[]).push(i);
        any = true;
      }
    }
    if (!any) unrouted++;
  }
  return { taken, unrouted };
}

/** What one publication made of the current batch, kept across a retry of that batch. */
interface Part {
  readonly result: EmitResult;
  /** The batch's entry indices the publication took; undefined: all of them, in order. */
  readonly indices: readonly number[] | undefined;
}

/**
 * Several Aeron publications behind one emitter, as Telegraf's several `[[outputs.aeron_publisher]]`
 * blocks: an entry goes to every publication whose filters pass it; an entry no publication takes is
 * delivered nowhere, by configuration (counted). A batch is confirmed when every publication that
 * took entries of it confirmed them, and confirmations resolve in emit order. A retryable failure
 * of one publication makes the batch retryable; on its retry the publications that already took
 * their part are not offered it again.
 */
export class AeronRouter implements Emitter {
  readonly name = 'aeron';
  readonly emitters: readonly AeronEmitter[];
  private readonly filters: ReadonlyArray<Matcher | undefined>;
  private readonly unrouted: { inc(n: number): void };
  private done: { batchId: number; parts: Map<number, Part> } | undefined;
  private lastConfirmation: Confirmation = Promise.resolve(true);

  constructor(config: AeronOutputConfig, deps: AeronEmitterDeps = {}) {
    this.emitters = config.publications.map((p) => new AeronEmitter(p, deps));
    this.filters = config.publications.map((p) => entryFilter(p));
    const existing = deps.registry?.getSingleMetric(AERON_UNROUTED_METRIC);
    const counter =
      existing instanceof Counter
        ? existing
        : new Counter({
            name: AERON_UNROUTED_METRIC,
            help: 'entries no Aeron publication took (no publication\'s tagpass/tagdrop passed them): delivered nowhere, by configuration',
            registers: deps.registry === undefined ? [] : [deps.registry],
          });
    counter.inc(0);
    this.unrouted = { inc: (n) => counter.inc(n) };
  }

  async start(): Promise<void> {
    await Promise.all(this.emitters.map((e) => e.start()));
  }

  async emit(batch: Batch, signal: AbortSignal): Promise<EmitResult> {
    // Without any filter every publication takes the whole batch: no entry objects are built (a raw
    // publication reads only batch.lines()).
    const filtered = this.filters.some((f) => f !== undefined);
    const entries = filtered ? batch.entries() : undefined;
    const { taken, unrouted } = entries === undefined ? { taken: undefined, unrouted: 0 } : routeEntries(entries, this.filters);
    const retry = this.done?.batchId === batch.id;
    if (!retry) {
      this.done = { batchId: batch.id, parts: new Map() };
      if (unrouted > 0) this.unrouted.inc(unrouted);
    }
    const parts = (this.done as { parts: Map<number, Part> }).parts;
    for (let p = 0; p < this.emitters.length; p++) {
      const indices = taken?.[p];
      if (indices?.length === 0 || parts.has(p)) continue;
      const part = indices === undefined || entries === undefined || indices.length === entries.length ? batch : arrayBatch(batch.id, indices.map((i) => entries[i] as Entry));
      const result = await (this.emitters[p] as AeronEmitter).emit(part, signal);
      if (result.kind === 'retryable') return result;
      parts.set(p, { result, indices });
    }
    this.done = undefined;
    const rejected = new Set<number>();
    const confirmations: Confirmation[] = [];
    let fatal: Error | undefined;
    for (const { result, indices } of parts.values()) {
      if (result.kind === 'fatal') {
        fatal ??= result.error;
        for (const r of result.rejected) rejected.add(indices === undefined ? r : (indices[r] as number));
      }
      if (result.kind !== 'retryable' && result.confirmed !== undefined) confirmations.push(result.confirmed);
    }
    // In emit order: this batch is confirmed only after the one before it.
    const previous = this.lastConfirmation;
    const confirmed: Confirmation = Promise.all([previous, ...confirmations]).then(([, ...own]) => own.every(Boolean));
    this.lastConfirmation = confirmed;
    if (fatal !== undefined) return { kind: 'fatal', error: fatal, rejected: [...rejected].sort((a, b) => a - b), confirmed };
    return { kind: 'ok', confirmed };
  }

  async close(): Promise<void> {
    await Promise.all(this.emitters.map((e) => e.close()));
  }
}

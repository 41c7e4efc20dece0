import { afterEach, describe, expect, it } from 'vitest';
import { metricValue } from '../../support/metrics-text.js';
import { Fleet } from '../helpers/scale-out-fleet.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * Scale-out with real processes: three aggregators (file emitter) and six collectors given all three
 * addresses. The collector ids are fixed (fleet-1..6), so the consistent hash spreads them the same
 * way on every run (1, 2 and 3 collectors over the three sorted addresses): every aggregator has
 * collectors of its own before anything fails.
 */
let fleet: Fleet | undefined;

afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function startFleet(): Promise<Fleet> {
  const f = new Fleet();
  fleet = f;
  await Promise.all([1, 2, 3].map(() => f.addAggregator('127.0.0.1')));
  const remote = f.aggregators.map((a) => a.listen).join(',');
  await Promise.all([1, 2, 3, 4, 5, 6].map(() => f.addCollector(remote)));
  return f;
}

describe('a fleet of collectors over three aggregators', () => {
  it('spreads over all three; kill -9 of one: its collectors fail over, it emits what it had acknowledged when restarted; lost = 0', async () => {
    const f = await startFleet();
    f.startWriting();
    await sleep(2000);
    const placement = await Promise.all(f.collectors.map((c) => f.connectedTo(c)));
    // Every aggregator has collectors of its own.
    for (const a of f.aggregators) expect(placement.filter((p) => p === a.listen).length).toBeGreaterThan(0);
    const victim = f.aggregators.find((a) => placement.filter((p) => p === a.listen).length >= 2) ?? (f.aggregators[0] as (typeof f.aggregators)[0]);
    const moved = f.collectors.filter((_, i) => placement[i] === victim.listen);
    const streamsBefore = await victim.process?.metric('mega_aggregator_streams_open');
    expect(streamsBefore).toBe(moved.length);
    await victim.process?.kill();
    await sleep(2000);
    // Its collectors now ship to the two others.
    for (const c of moved) {
      const now = await f.connectedTo(c);
      expect(now).toBeDefined();
      expect(now).not.toBe(victim.listen);
      expect(metricValue((await c.process?.metricsText()) ?? '', 'mega_collector_failovers_total', { reason: 'error' })).toBeGreaterThanOrEqual(1);
    }
    await f.restart(victim);
    await sleep(3000);
    await f.stopWriting();
    const report = await f.settle();
    const shares = f.aggregators.map((a) => new Set(f.delivered(a).map((d) => d.line)).size);
    console.log(
      `3 aggregators, 6 collectors, kill -9 of one: ${report.expected} lines written, ${report.delivered} delivered, lost ${report.missing.length}, duplicates ${report.duplicates}; shares ${shares.join('/')}`,
    );
    expect(report.missing.slice(0, 5)).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.foreignDuplicates).toEqual([]);
    for (const share of shares) expect(share).toBeGreaterThan(0);
    // Back in the pool after its restart: the collectors that prefer it returned (rebalance).
    for (const c of moved) expect(await f.connectedTo(c)).toBe(victim.listen);
  }, 120_000);

  it('a rolling SIGTERM restart of all three while shipping: lost = 0, duplicates = 0, each stop sends its collectors elsewhere at once', async () => {
    const f = await startFleet();
    f.startWriting();
    await sleep(1500);
    const moves = async (c: (typeof f.collectors)[0]): Promise<{ goaway: number; rebalance: number }> => {
      const text = (await c.process?.metricsText()) ?? '';
      return {
        goaway: metricValue(text, 'mega_collector_failovers_total', { reason: 'goaway' }),
        rebalance: metricValue(text, 'mega_collector_failovers_total', { reason: 'rebalance' }),
      };
    };
    let sentAway = 0;
    for (const a of f.aggregators) {
      const placement = await Promise.all(f.collectors.map((c) => f.connectedTo(c)));
      const onIt = f.collectors.filter((_, i) => placement[i] === a.listen);
      const before = await Promise.all(onIt.map(moves));
      expect(await a.process?.stop()).toBe(0);
      // Each collector on it went to another aggregator: sent away by it, or (a race with the scrape
      // above) back to its own preferred one just before the SIGTERM.
      const after = await waitFor(
        async () => {
          const now = await Promise.all(onIt.map(moves));
          return now.every((m, i) => m.goaway > (before[i]?.goaway ?? 0) || m.rebalance > (before[i]?.rebalance ?? 0)) && now;
        },
        { timeoutMs: 10_000, what: `the collectors on ${a.listen} to fail over after its SIGTERM` },
      );
      const goawayMoves = after.reduce((n, m, i) => n + m.goaway - (before[i]?.goaway ?? 0), 0);
      if (onIt.length > 0) expect(goawayMoves).toBeGreaterThanOrEqual(1);
      sentAway += goawayMoves;
      await sleep(300);
      await f.restart(a);
      // A resolve interval (1 s) for the collectors that prefer it to come back.
      await sleep(2000);
    }
    await sleep(1000);
    await f.stopWriting();
    const report = await f.settle();
    // No pause longer than a reconnect: from "sent away" to the next stream's dial.
    const pauses: number[] = [];
    for (const c of f.collectors) {
      const records = (c.process?.logs ?? []).map((l) => JSON.parse(l) as { msg: string; kind?: string; time: number });
      records.forEach((r, i) => {
        if (r.kind !== 'goaway') return;
        const next = records.slice(i + 1).find((n) => n.msg === 'failing over to another aggregator');
        pauses.push(next === undefined ? Infinity : next.time - r.time);
      });
    }
    const shares = f.aggregators.map((a) => new Set(f.delivered(a).map((d) => d.line)).size);
    console.log(
      `rolling SIGTERM restart of 3 aggregators under 6 collectors: ${report.expected} lines written, ${report.delivered} delivered, lost ${report.missing.length}, duplicates ${report.duplicates}; shares ${shares.join('/')}; ${sentAway} collectors sent away, longest pause before the next dial ${Math.max(...pauses)} ms`,
    );
    expect(report.missing.slice(0, 5)).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.duplicates).toBe(0);
    expect(sentAway).toBeGreaterThanOrEqual(3);
    expect(pauses.length).toBeGreaterThanOrEqual(sentAway);
    // Generous for a machine shared by many test runs; measured: tens of ms.
    expect(Math.max(...pauses)).toBeLessThan(2000);
  }, 120_000);
});

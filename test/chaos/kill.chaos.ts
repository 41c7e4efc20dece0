import { describe, it } from 'vitest';
import type { Random } from './random.js';
import { sleep } from './rig.js';
import type { ChaosRig } from './rig.js';
import { chaosRow } from './row.js';
import { CHAOS_SECONDS } from './settings.js';
import { writeDuring } from './scenario.js';

/**
 * Process deaths while lines are written and shipped: kill -9 loops of the collector, of the aggregator
 * and of both (replays allowed and counted, nothing lost), and SIGTERM of each (exit 0, no duplicates).
 */
type Target = 'collector' | 'aggregator' | 'both';

async function restart(rig: ChaosRig, target: Target, random: Random, how: 'kill' | 'stop'): Promise<string | undefined> {
  let problem: string | undefined;
  const down = async (p: { kill(): Promise<number | string>; stop(): Promise<number | string> } | undefined, who: string): Promise<void> => {
    if (p === undefined) return;
    const code = how === 'kill' ? await p.kill() : await p.stop();
    if (how === 'stop' && code !== 0) problem = `${who} exited ${code} on SIGTERM`;
  };
  if (target !== 'aggregator') await down(rig.collectors.get('c1'), 'collector');
  if (target !== 'collector') await down(rig.aggregator, 'aggregator');
  await sleep(random.ms(50, 800));
  if (target === 'both' && random.next() < 0.5) {
    await rig.startCollector('c1', `${rig.logs}/*.log`);
    await sleep(random.ms(0, 500));
    await rig.startAggregator();
  } else {
    if (target !== 'collector') await rig.startAggregator();
    if (target !== 'aggregator') await rig.startCollector('c1', `${rig.logs}/*.log`);
  }
  return problem;
}

function loop(target: Target, how: 'kill' | 'stop', random: Random, scenario: string): ReturnType<typeof writeDuring> {
  return writeDuring({
    scenario,
    random,
    linesPerSecond: 3000,
    during: async ({ rig }) => {
      const until = Date.now() + CHAOS_SECONDS * 1000;
      const problems: string[] = [];
      let n = 0;
      // At least three deaths per run, however slowly the programs restart on a busy machine.
      while (Date.now() < until || n < 3) {
        await sleep(random.ms(200, 1500));
        const p = await restart(rig, target, random, how);
        if (p !== undefined) problems.push(p);
        n++;
      }
      return { problems, note: `${how === 'kill' ? 'kill -9' : 'SIGTERM'} x${n}` };
    },
  });
}

describe('chaos: process deaths', () => {
  it('kill -9 loop: collector', ({ task }) => chaosRow(task, (r) => loop('collector', 'kill', r, task.name), { duplicatesAllowed: true }));
  it('kill -9 loop: aggregator', ({ task }) => chaosRow(task, (r) => loop('aggregator', 'kill', r, task.name), { duplicatesAllowed: true }));
  it('kill -9 loop: both', ({ task }) => chaosRow(task, (r) => loop('both', 'kill', r, task.name), { duplicatesAllowed: true }));
  it('SIGTERM loop: collector', ({ task }) => chaosRow(task, (r) => loop('collector', 'stop', r, task.name)));
  it('SIGTERM loop: aggregator', ({ task }) => chaosRow(task, (r) => loop('aggregator', 'stop', r, task.name)));
});

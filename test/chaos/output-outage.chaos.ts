import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, it } from 'vitest';
import { generateTestCerts } from '../helpers/certs.js';
import { startFakeEventsApi } from '../helpers/pagerduty-server.js';
import type { Random } from './random.js';
import { sleep } from './rig.js';
import { chaosRow } from './row.js';
import type { RunOutcome } from './row.js';
import { CHAOS_SECONDS } from './settings.js';
import { writeDuring } from './scenario.js';

/**
 * The file emitter's target goes away: its directory removed with `rm -rf` while lines flow and created
 * again later (what counts is the file the configured path names at the end), and an outage from the start
 * with PagerDuty escalation against a local HTTPS Events API v2 server: exactly one trigger and one resolve,
 * nothing lost.
 */
function outputRemoved(random: Random, scenario: string): Promise<RunOutcome> {
  return writeDuring({
    scenario,
    random,
    linesPerSecond: 3000,
    during: async ({ rig }) => {
      const until = Date.now() + CHAOS_SECONDS * 1000;
      let removals = 0;
      while (Date.now() < until) {
        await sleep(random.ms(300, 1200));
        await rig.removeOutputDir();
        removals++;
        await sleep(random.ms(500, 2500));
        mkdirSync(dirname(rig.out), { recursive: true });
      }
      return { note: `rm -rf x${removals}` };
    },
  });
}

async function pagerDutyOutage(random: Random, scenario: string): Promise<RunOutcome> {
  const certs = await generateTestCerts();
  const api = await startFakeEventsApi({ cert: certs.server.cert, key: certs.server.key });
  try {
    const outage = random.ms(1500, 3000);
    let outDir = '';
    const outcome = await writeDuring({
      scenario,
      random,
      linesPerSecond: 2000,
      makeOutDir: false,
      aggregatorEnv: {
        AGGREGATOR_EMIT_MAX_RETRIES: '2',
        AGGREGATOR_EMIT_RETRY_INITIAL_DELAY: '20ms',
        AGGREGATOR_EMIT_RETRY_MAX_DELAY: '200ms',
        AGGREGATOR_NOTIFY_CONFIGURATION: JSON.stringify({
          integration_key: 'CHAOSROUTINGKEY',
          incident_key: 'mega-aggregator-chaos',
          identifier: 'chaos aggregator',
          server: api.host,
        }),
        NODE_EXTRA_CA_CERTS: certs.ca.certPath,
      },
      during: async ({ rig }) => {
        outDir = dirname(rig.out);
        await sleep(outage);
        mkdirSync(outDir, { recursive: true });
        await sleep(Math.max(0, CHAOS_SECONDS * 1000 - outage));
        return {};
      },
    });
    await sleep(500); // a late second trigger or resolve would land here
    const actions = api.events.map((e) => `${e.event_action}:${e.dedup_key ?? ''}`);
    const problems = [...(outcome.problems ?? [])];
    if (actions.join(',') !== 'trigger:mega-aggregator-chaos,resolve:mega-aggregator-chaos') problems.push(`events ${actions.join(',') || 'none'}`);
    return { ...outcome, problems, note: `outage ${outage} ms, events ${api.events.map((e) => e.event_action).join(',')}` };
  } finally {
    await api.close();
    await certs.cleanup();
  }
}

describe('chaos: emitter target outages', () => {
  // Lost must be 0; duplicates are counted but allowed (at least once): the rig reads the file one last
  // time just before removing it, and that read can catch a batch the emitter wrote but had not yet
  // confirmed (its check that the path still names the file comes after the write). Unconfirmed, that
  // batch is written again into the new file, so the rig sees it twice; on disk it is only in the new one.
  it('output directory removed (rm -rf) and recreated', ({ task }) => chaosRow(task, (r) => outputRemoved(r, task.name), { duplicatesAllowed: true }));
  it('emitter outage with PagerDuty (one trigger, one resolve)', ({ task }) => chaosRow(task, (r) => pagerDutyOutage(r, task.name)));
});

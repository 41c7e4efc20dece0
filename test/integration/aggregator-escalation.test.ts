import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { generateTestCerts } from '../helpers/certs.js';
import type { TestCerts } from '../helpers/certs.js';
import { buildEntries, createIngestClient } from '../helpers/ingest-client.js';
import { startFakeEventsApi } from '../helpers/pagerduty-server.js';
import type { FakeEventsApi } from '../helpers/pagerduty-server.js';
import { tryWaitFor, waitFor } from '../helpers/wait-for.js';

describe('aggregator: emitter outage escalates once to PagerDuty and loses nothing (real process, real HTTPS)', () => {
  let dir: string;
  let certs: TestCerts;
  let api: FakeEventsApi;
  let agg: AggregatorProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-agg-escalate-'));
    certs = await generateTestCerts();
    api = await startFakeEventsApi({ cert: certs.server.cert, key: certs.server.key });
  });

  afterAll(async () => {
    await agg?.kill();
    await api?.close();
    await certs?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('file target unwritable for a while: one trigger, one resolve, every entry written once', async () => {
    const target = join(dir, 'not-yet', 'out.log'); // the directory does not exist: every write fails
    agg = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_FILE_CONFIGURATION: JSON.stringify({ path: target }),
        AGGREGATOR_MAX_BATCH_SIZE: '5',
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
        AGGREGATOR_EMIT_MAX_RETRIES: '2',
        AGGREGATOR_EMIT_RETRY_INITIAL_DELAY: '20ms',
        AGGREGATOR_EMIT_RETRY_MAX_DELAY: '200ms',
        AGGREGATOR_NOTIFY_CONFIGURATION: JSON.stringify({
          integration_key: 'R0UTINGKEY',
          incident_key: 'mega-aggregator-test-outage',
          identifier: 'aggregator-under-test',
          server: api.host,
        }),
        // What an operator does for a private Events API endpoint: trust its CA. TLS checks stay on.
        NODE_EXTRA_CA_CERTS: certs.ca.certPath,
      },
    });
    // PagerDuty itself fails at first: the notifier must retry without holding up anything.
    api.failNext(2);

    const client = createIngestClient(agg.address);
    const stream = client.open();
    const expected: string[] = [];
    for (let c = 0; c < 4; c++) {
      const lines = Array.from({ length: 5 }, (_, i) => `outage-${c}-${i}`);
      expected.push(...lines);
      const { entries, entryCount } = buildEntries(lines.map((l) => ({ data: Buffer.from(l) })));
      stream.send({ sequence: c, entries, entryCount });
    }
    const acks = await stream.waitForAcks(4);
    expect(acks.every((a) => a.code === 'OK')).toBe(true);

    const [trigger] = await api.waitForEvents(1);
    expect(trigger?.event_action).toBe('trigger');
    expect(trigger?.routing_key).toBe('R0UTINGKEY');
    expect(trigger?.dedup_key).toBe('mega-aggregator-test-outage');
    expect(trigger?.payload?.summary).toContain('aggregator-under-test');
    expect(trigger?.payload?.summary).toMatch(/ENOENT|not-yet/);
    expect(api.refused).toBeGreaterThanOrEqual(2);
    expect(await agg.metric('mega_aggregator_emit_retries_total')).toBeGreaterThanOrEqual(2);

    // More batches fail behind the first one during the same outage: still a single incident. Wait until
    // emits have failed again after the trigger (not a fixed sleep, which passes when nothing ran).
    const retriesAtTrigger = await agg.metric('mega_aggregator_emit_retries_total');
    await waitFor(async () => ((await agg?.metric('mega_aggregator_emit_retries_total')) ?? 0) >= retriesAtTrigger + 3, { timeoutMs: 15_000, what: 'emits failing again after the trigger' });
    expect(api.events).toHaveLength(1);

    await mkdir(join(dir, 'not-yet'));
    const events = await api.waitForEvents(2);
    expect(events[1]?.event_action).toBe('resolve');
    expect(events[1]?.dedup_key).toBe('mega-aggregator-test-outage');

    const linesOf = async (): Promise<string[]> => (await readFile(target, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    await tryWaitFor(async () => (await linesOf()).length >= expected.length, { timeoutMs: 15_000, what: 'every line in the output' });
    const lines = await linesOf();
    expect(lines).toEqual(expected);
    await new Promise((r) => setTimeout(r, 300));
    expect(api.events.map((e) => e.event_action)).toEqual(['trigger', 'resolve']);
    expect(await agg.metric('mega_aggregator_notifications_total', { action: 'trigger', outcome: 'success' })).toBe(1);
    expect(await agg.metric('mega_aggregator_notifications_total', { action: 'resolve', outcome: 'success' })).toBe(1);
    await stream.finish();
    client.close();
    expect(await agg.stop()).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import type { EventPayloadV2 } from '@pagerduty/pdjs/build/src/events.js';
import { PagerDutyNotifier, eventsApiHost } from '../../src/emitters/pagerduty-notifier.js';
import type { EventSender, NotifyOutcome } from '../../src/emitters/pagerduty-notifier.js';
import { ManualClock } from '../../src/util/manual-clock.js';

const config = { integration_key: 'RK', incident_key: 'INC-1', identifier: 'agg-7', server: 'https://pd.example:8443/' };

async function flush(): Promise<void> {
  for (let i = 0; i < 30; i++) await Promise.resolve();
}

function setup(respond: (data: EventPayloadV2, attempt: number, signal: AbortSignal) => number | Error | Promise<number>) {
  const clock = new ManualClock();
  const sent: Array<{ server: string | undefined; data: EventPayloadV2 }> = [];
  const outcomes: string[] = [];
  let attempts = 0;
  const send: EventSender = async (server, data, signal) => {
    const r = await respond(data, attempts++, signal);
    if (r instanceof Error) throw r;
    if (r >= 200 && r < 300) sent.push({ server, data });
    return r;
  };
  const notifier = new PagerDutyNotifier({
    config,
    emitterName: 'file',
    clock,
    random: () => 0,
    send,
    retry: { initialDelayMs: 100, maxDelayMs: 1000 },
    onNotification: (action, outcome: NotifyOutcome) => outcomes.push(`${action}:${outcome}`),
  });
  return { clock, notifier, sent, outcomes };
}

describe('PagerDuty notifier', () => {
  it('sends trigger then resolve with routing key, dedup key and a summary naming the identifier and the error', async () => {
    const { notifier, sent, outcomes } = setup(() => 202);
    notifier.trigger(new Error('EACCES: /var/log/out.log'));
    notifier.resolve();
    await flush();
    expect(sent.map((s) => s.data.event_action)).toEqual(['trigger', 'resolve']);
    expect(sent[0]?.server).toBe('pd.example:8443');
    expect(sent[0]?.data).toMatchObject({ routing_key: 'RK', dedup_key: 'INC-1', payload: { source: 'agg-7', severity: 'critical' } });
    expect(sent[0]?.data.payload.summary).toContain('agg-7');
    expect(sent[0]?.data.payload.summary).toContain('EACCES: /var/log/out.log');
    expect(sent[1]?.data).toMatchObject({ routing_key: 'RK', dedup_key: 'INC-1', event_action: 'resolve' });
    expect(outcomes).toEqual(['trigger:success', 'resolve:success']);
    await notifier.close();
  });

  it('retries with backoff when PagerDuty is unreachable or answers 5xx/429, keeping trigger before resolve', async () => {
    const { notifier, sent, clock, outcomes } = setup((_d, n) => (n === 0 ? new Error('ECONNREFUSED') : n === 1 ? 503 : n === 2 ? 429 : 202));
    notifier.trigger(new Error('down'));
    notifier.resolve();
    await flush();
    expect(sent).toHaveLength(0);
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      await flush();
    }
    expect(sent.map((s) => s.data.event_action)).toEqual(['trigger', 'resolve']);
    expect(outcomes).toEqual(['trigger:failure', 'trigger:failure', 'trigger:failure', 'trigger:success', 'resolve:success']);
    await notifier.close();
  });

  it('does not retry an event the API refuses as invalid (4xx)', async () => {
    const { notifier, sent, outcomes } = setup((d) => (d.event_action === 'trigger' ? 400 : 202));
    notifier.trigger(new Error('x'));
    notifier.resolve();
    await flush();
    expect(outcomes).toEqual(['trigger:rejected', 'resolve:success']);
    expect(sent).toHaveLength(1);
    await notifier.close();
  });

  it('never blocks the caller, and close gives up on an unreachable API after its deadline', async () => {
    const { notifier, clock } = setup(() => new Error('ECONNREFUSED'));
    const t0 = Date.now();
    notifier.trigger(new Error('x'));
    expect(Date.now() - t0).toBeLessThan(50);
    await flush();
    const closed = notifier.close(500);
    clock.advance(500);
    await flush();
    await closed;
  });

  it('counts every failed attempt, the one that closing cut short included', async () => {
    // The first attempt fails at once; the second hangs until close aborts it.
    const { notifier, clock, outcomes } = setup((_d, n, signal) =>
      n === 0 ? 503 : new Promise<number>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
    );
    notifier.trigger(new Error('x'));
    await flush();
    clock.advance(100); // random 0: the first wait is the initial delay
    await flush();
    expect(outcomes).toEqual(['trigger:failure']);
    const closed = notifier.close(10);
    clock.advance(10);
    await flush();
    await closed;
    expect(outcomes).toEqual(['trigger:failure', 'trigger:failure']);
  });

  it('accepts host, host:port or an https URL as server', () => {
    expect(eventsApiHost(undefined)).toBeUndefined();
    expect(eventsApiHost('events.eu.pagerduty.com')).toBe('events.eu.pagerduty.com');
    expect(eventsApiHost('https://127.0.0.1:9443/v2/enqueue')).toBe('127.0.0.1:9443');
  });
});

import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A local HTTPS server speaking PagerDuty Events API v2 (POST /v2/enqueue), for escalation tests. It
 * validates each event the way the real API documents it, answers 202 {status:"success", dedup_key},
 * records what it accepted, and can be told to fail (HTTP 500) to exercise the notifier's retries.
 */
export interface RecordedEvent {
  readonly routing_key: string;
  readonly event_action: 'trigger' | 'acknowledge' | 'resolve';
  readonly dedup_key?: string;
  readonly payload?: { summary: string; source: string; severity: string; [k: string]: unknown };
  readonly [k: string]: unknown;
}

export interface FakeEventsApi {
  readonly port: number;
  /** host:port for the `server` field of AGGREGATOR_NOTIFY_CONFIGURATION. */
  readonly host: string;
  /** Accepted events, in arrival order. */
  readonly events: RecordedEvent[];
  /** Requests refused (by `failNext` or validation). */
  readonly refused: number;
  /** Make the next `n` requests fail with HTTP 500. */
  failNext(n: number): void;
  /** Resolves once `n` events were accepted. */
  waitForEvents(n: number, timeoutMs?: number): Promise<RecordedEvent[]>;
  close(): Promise<void>;
}

function validate(body: unknown): string | null {
  if (typeof body !== 'object' || body === null) return 'body must be a JSON object';
  const e = body as Record<string, unknown>;
  if (typeof e.routing_key !== 'string' || e.routing_key.length === 0) return 'routing_key is required';
  if (!['trigger', 'acknowledge', 'resolve'].includes(e.event_action as string)) return 'event_action is invalid';
  if (e.event_action !== 'trigger') {
    if (typeof e.dedup_key !== 'string' || e.dedup_key.length === 0) return 'dedup_key is required for acknowledge/resolve';
    return null;
  }
  const p = e.payload as Record<string, unknown> | undefined;
  if (typeof p !== 'object' || p === null) return 'payload is required';
  if (typeof p.summary !== 'string' || p.summary.length === 0 || p.summary.length > 1024) return 'payload.summary is invalid';
  if (typeof p.source !== 'string' || p.source.length === 0) return 'payload.source is required';
  if (!['critical', 'error', 'warning', 'info'].includes(p.severity as string)) return 'payload.severity is invalid';
  return null;
}

export async function startFakeEventsApi(tls: { cert: Buffer; key: Buffer }): Promise<FakeEventsApi> {
  const events: RecordedEvent[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  let failures = 0;
  let refused = 0;
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, body: object): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/v2/enqueue') {
        refused++;
        reply(404, { status: 'not found' });
        return;
      }
      if (failures > 0) {
        failures--;
        refused++;
        reply(500, { status: 'error', message: 'injected failure' });
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        refused++;
        reply(400, { status: 'invalid event', message: 'Event object is invalid', errors: ['not JSON'] });
        return;
      }
      const problem = validate(body);
      if (problem !== null) {
        refused++;
        reply(400, { status: 'invalid event', message: 'Event object is invalid', errors: [problem] });
        return;
      }
      const event = body as RecordedEvent;
      events.push(event);
      reply(202, { status: 'success', message: 'Event processed', dedup_key: event.dedup_key ?? `generated-${events.length}` });
      for (const w of [...waiters]) {
        if (events.length >= w.n) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    events,
    get refused() {
      return refused;
    },
    failNext: (n) => {
      failures = n;
    },
    waitForEvents: (n, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        if (events.length >= n) {
          resolve(events.slice());
          return;
        }
        const timer = setTimeout(() => reject(new Error(`only ${events.length} of ${n} events within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve(events.slice());
          },
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

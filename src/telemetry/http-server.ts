import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { parseHostPort } from '../config/address.js';

export interface Probe {
  /** Live: the process is up and its loop answers. */
  healthy(): boolean;
  /** Ready: it can do its job now (listening, spool open, ...); `reason` says why not. */
  ready(): { ok: boolean; reason?: string };
}

export interface TelemetryServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves /metrics (Prometheus text), /healthz and /readyz on `address` ("host:port", "[::]:9464"). */
export async function startTelemetryServer(address: string, registry: Registry, probe: Probe): Promise<TelemetryServer> {
  const { host, port } = parseHostPort(address);
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (url.startsWith('/metrics')) {
      registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body))
        .catch((err: unknown) => res.writeHead(500).end(String(err)));
    } else if (url.startsWith('/healthz')) {
      const ok = probe.healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'unhealthy\n');
    } else if (url.startsWith('/readyz')) {
      const r = probe.ready();
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain' }).end(r.ok ? 'ready\n' : `not ready: ${r.reason ?? ''}\n`);
    } else res.writeHead(404).end();
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startProgram } from '../../support/program.js';
import type { RunningProgram } from '../../support/program.js';
import { interpolate, readCompose } from './deploy-envs.js';
import { waitFor } from './wait-for.js';

/**
 * Runs the aggregator and `collector-a` with docker-compose.yml's environment, its container paths
 * moved under a temp dir and its ports to loopback, ships one line end to end, runs the image's health
 * check against both, and stops both (each must exit 0).
 */
export interface ComposeShipOptions {
  readonly aggregatorScript: string;
  readonly collectorScript: string;
  readonly healthcheckScript: string;
  /** A temp dir to work in. */
  readonly dir: string;
  /** Compose interpolation variables, e.g. { MC_TLS: '1' }. */
  readonly vars?: Record<string, string>;
  /** Where the compose file's ./certs mount (/certs) points. */
  readonly certsDir?: string;
  /** Host the collector dials (default 127.0.0.1; a TLS run dials a name in the server certificate). */
  readonly dialHost?: string;
  /** Receives each started program, so the caller can stop it if the test fails midway. */
  readonly track: (p: RunningProgram) => void;
}

function adapt(env: Record<string, string>, vars: Record<string, string>, replacements: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(env)) {
    let value = interpolate(raw, vars);
    for (const [from, to] of Object.entries(replacements)) value = value.split(from).join(to);
    out[key] = value;
  }
  return out;
}

export async function shipOneLineWithComposeEnv(o: ComposeShipOptions): Promise<void> {
  const compose = readCompose();
  const vars = o.vars ?? {};
  const run = mkdtempSync(join(o.dir, 'run-'));
  const shippedDir = join(run, 'shipped');
  const logs = join(run, 'logs');
  mkdirSync(join(logs, 'a'), { recursive: true });
  mkdirSync(shippedDir);
  const certs: Record<string, string> = o.certsDir === undefined ? {} : { '/certs/': `${o.certsDir}/` };
  const aggEnv = adapt(compose.services.aggregator?.environment ?? {}, vars, { '/var/lib/mega-collector': join(run, 'var'), '/var/log/mega-collector': shippedDir, ...certs });
  const aggregator = await startProgram({
    script: o.aggregatorScript,
    env: { PATH: process.env.PATH, ...aggEnv, AGGREGATOR_LISTEN_ADDRESS: '127.0.0.1:0', AGGREGATOR_METRICS_ADDRESS: '127.0.0.1:0', AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms' },
    readyMessage: 'listening',
  });
  o.track(aggregator);
  const colEnv = adapt(compose.services['collector-a']?.environment ?? {}, vars, { '/var/lib/mega-collector': join(run, 'state-a'), '/logs': logs, ...certs });
  const collector = await startProgram({
    script: o.collectorScript,
    env: {
      PATH: process.env.PATH,
      ...colEnv,
      COLLECTOR_REMOTE_ADDRESS: `${o.dialHost ?? '127.0.0.1'}:${String(aggregator.ready.grpcPort)}`,
      COLLECTOR_METRICS_ADDRESS: '127.0.0.1:0',
      COLLECTOR_BUFFER_TIMEOUT: '50ms',
    },
    readyMessage: 'started',
  });
  o.track(collector);

  const line = `compose environment line ${Date.now()}`;
  appendFileSync(join(logs, 'a', 'app.log'), `${line}\n`);
  const shipped = join(shippedDir, 'shipped.log');
  await waitFor(() => existsSync(shipped) && readFileSync(shipped, 'utf8').includes(line), { timeoutMs: 20_000, intervalMs: 100, what: 'the line at the file emitter' });
  expect(readFileSync(shipped, 'utf8')).toBe(`${line}\n`);

  // The image's HEALTHCHECK command, against each program.
  for (const p of [aggregator, collector]) {
    const check = spawnSync(process.execPath, [o.healthcheckScript], { env: { HEALTHCHECK_PORT: String(p.ready.metricsPort) } });
    expect(check.status, String(p.child.pid)).toBe(0);
  }
  expect(await collector.stop()).toBe(0);
  expect(await aggregator.stop()).toBe(0);
}

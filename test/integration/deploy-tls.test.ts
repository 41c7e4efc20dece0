import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAggregatorConfig } from '../../src/config/aggregator-config.js';
import { loadCollectorConfig } from '../../src/config/collector-config.js';
import type { RunningProgram } from '../../support/program.js';
import { AGGREGATOR_MAIN, REPO_ROOT } from '../helpers/aggregator-process.js';
import { shipOneLineWithComposeEnv } from '../helpers/compose-ship.js';
import { composeEnvs, kubernetesEnvs, systemdEnvs } from '../helpers/deploy-envs.js';
import type { DeploymentEnv } from '../helpers/deploy-envs.js';

/**
 * deploy/dev-certs.sh (real openssl) makes certificates the programs accept: the server's names include
 * the compose and Kubernetes service name `aggregator`; every deployment file's TLS settings load with
 * them; and the compose environment with MC_TLS=1 ships a line over mTLS between the real programs.
 */
let dir: string;
let certs: string;
const running: RunningProgram[] = [];

function devCerts(out: string, ...names: string[]): ReturnType<typeof spawnSync> {
  return spawnSync('sh', [join(REPO_ROOT, 'deploy/dev-certs.sh'), out, ...names], { encoding: 'utf8', timeout: 30_000 });
}

const cert = (name: string): X509Certificate => new X509Certificate(readFileSync(join(certs, `${name}.crt`)));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mc-devcerts-'));
  certs = join(dir, 'certs');
  const r = devCerts(certs, 'aggregator.mega-collector.svc', '10.1.2.3');
  expect(r.status, String(r.stderr)).toBe(0);
  expect(String(r.stdout)).toContain('DNS:aggregator,');
});

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop(5000)));
  rmSync(dir, { recursive: true, force: true });
});

describe('deploy/dev-certs.sh', () => {
  it('makes a CA, a server certificate naming the service `aggregator` (and the extra names), and a client certificate', () => {
    const ca = cert('ca');
    const server = cert('server');
    const client = cert('client');
    expect(ca.ca).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(client.verify(ca.publicKey)).toBe(true);
    // What a TLS client checks against the name it dialed.
    expect(server.checkHost('aggregator')).toBe('aggregator');
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkHost('aggregator.mega-collector.svc')).toBe('aggregator.mega-collector.svc');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkIP('10.1.2.3')).toBe('10.1.2.3');
    expect(server.checkHost('collector-a')).toBeUndefined();
    expect(server.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
    expect(client.keyUsage).toContain('1.3.6.1.5.5.7.3.2'); // clientAuth
    // The containers' non-root user reads the keys through the bind mount; the CA key stays private.
    expect(statSync(join(certs, 'server.key')).mode & 0o044).toBe(0o044);
    expect(statSync(join(certs, 'ca.key')).mode & 0o077).toBe(0);
  });

  it('says clearly when openssl is missing', () => {
    const r = spawnSync('/bin/sh', [join(REPO_ROOT, 'deploy/dev-certs.sh'), join(dir, 'none')], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('openssl is not installed');
  });
});

describe('TLS settings of the deployment files, with the development certificates', () => {
  /** Points the certificate paths of a deployment at the generated files (same base names). */
  function withCerts(d: DeploymentEnv): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(d.env)) env[k] = /_TLS_/.test(k) ? join(certs, v.split('/').pop() as string) : v;
    return env;
  }

  it('compose (MC_TLS=1), Kubernetes and systemd: TLS on, and the programs load every certificate and key', () => {
    const envs = [...composeEnvs({ MC_TLS: '1' }), ...kubernetesEnvs(), ...systemdEnvs()];
    expect(envs).toHaveLength(7);
    for (const d of envs) {
      if (d.program === 'mega-aggregator') {
        const config = loadAggregatorConfig(withCerts(d));
        expect(config.tls?.key.length, d.where).toBeGreaterThan(0);
      } else {
        const config = loadCollectorConfig(withCerts(d));
        expect(config.tls, d.where).not.toBeNull();
      }
    }
  });

  it('the compose environment with MC_TLS=1 ships a line over mTLS between the real programs', async () => {
    await shipOneLineWithComposeEnv({
      aggregatorScript: AGGREGATOR_MAIN,
      collectorScript: join(REPO_ROOT, 'dist/cmd/collector/main.js'),
      healthcheckScript: join(REPO_ROOT, 'dist/cmd/healthcheck/main.js'),
      dir,
      vars: { MC_TLS: '1' },
      certsDir: certs,
      dialHost: 'localhost',
      track: (p) => running.push(p),
    });
  }, 60_000);
});

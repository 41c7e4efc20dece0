import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startProgram } from '../../src/util/program.js';
import type { RunningProgram } from '../../src/util/program.js';

/**
 * What the Docker image does, without a Docker engine: a clean copy with production dependencies only
 * (`npm ci --omit=dev`) and dist/ + api/, both programs started from it with the compose file's
 * environment (paths and ports moved to a temp dir and loopback), and a line shipped end to end.
 * And what `npm install -g` of the package does: `npm pack`, a global install of the tarball into a
 * temp prefix, both installed commands run (--version, and a line shipped end to end).
 */
const root = resolve('.');
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { environment?: Record<string, string> }>;
};

let dir: string;
let app: string;
const running: RunningProgram[] = [];

function adapt(env: Record<string, string>, replacements: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(env)) {
    let value = String(raw).replace(/\$\{(\w+):-([^}]*)\}/g, (_, _n: string, d: string) => d);
    for (const [from, to] of Object.entries(replacements)) value = value.split(from).join(to);
    out[key] = value;
  }
  return out;
}

beforeAll(() => {
  expect(existsSync(join(root, 'dist/cmd/aggregator/main.js')), 'run npm run build first').toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'mc-image-'));
  app = join(dir, 'app');
  mkdirSync(app);
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(root, f), join(app, f));
  for (const d of ['dist', 'api']) cpSync(join(root, d), join(app, d), { recursive: true });
  execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: app,
    stdio: 'pipe',
    timeout: 180_000,
  });
}, 200_000);

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop(5000)));
  rmSync(dir, { recursive: true, force: true });
});

describe('the runtime image, reproduced without Docker', () => {
  it('has no dev dependency installed', () => {
    expect(existsSync(join(app, 'node_modules/vitest'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/@grpc/grpc-js'))).toBe(true);
  });

  it('runs both programs from dist/ with the compose environment and ships a line', async () => {
    await shipOneLine(join(app, 'dist/cmd/aggregator/main.js'), join(app, 'dist/cmd/collector/main.js'), join(app, 'dist/cmd/healthcheck/main.js'));
  }, 60_000);
});

/** Starts both programs with the compose environment (moved to `dir`), ships a line, runs the health check. */
async function shipOneLine(aggregatorScript: string, collectorScript: string, healthcheckScript: string): Promise<void> {
  const run = mkdtempSync(join(dir, 'run-'));
  const volume = join(run, 'var');
  const shippedDir = join(run, 'shipped');
  const logs = join(run, 'logs');
  mkdirSync(join(logs, 'a'), { recursive: true });
  mkdirSync(shippedDir);
  const aggEnv = adapt(compose.services.aggregator?.environment ?? {}, { '/var/lib/mega-collector': volume, '/var/log/mega-collector': shippedDir });
  const aggregator = await startProgram({
    script: aggregatorScript,
    env: {
      PATH: process.env.PATH,
      ...aggEnv,
      AGGREGATOR_LISTEN_ADDRESS: '127.0.0.1:0',
      AGGREGATOR_METRICS_ADDRESS: '127.0.0.1:0',
      AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '100ms',
    },
    readyMessage: 'listening',
  });
  running.push(aggregator);
  const colEnv = adapt(compose.services['collector-a']?.environment ?? {}, { '/var/lib/mega-collector': join(run, 'state-a'), '/logs': logs });
  const collector = await startProgram({
    script: collectorScript,
    env: {
      PATH: process.env.PATH,
      ...colEnv,
      COLLECTOR_REMOTE_ADDRESS: `127.0.0.1:${String(aggregator.ready.grpcPort)}`,
      COLLECTOR_METRICS_ADDRESS: '127.0.0.1:0',
      COLLECTOR_BUFFER_TIMEOUT: '50ms',
    },
    readyMessage: 'started',
  });
  running.push(collector);

  const line = `packaging test line ${Date.now()}`;
  appendFileSync(join(logs, 'a', 'app.log'), `${line}\n`);
  const shipped = join(shippedDir, 'shipped.log');
  const deadline = Date.now() + 20_000;
  while (!(existsSync(shipped) && readFileSync(shipped, 'utf8').includes(line))) {
    if (Date.now() > deadline) throw new Error('the line did not reach the file emitter');
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(readFileSync(shipped, 'utf8')).toBe(`${line}\n`);

  // The image's HEALTHCHECK command, against each program.
  for (const [program, port] of [
    [aggregator, aggregator.ready.metricsPort],
    [collector, collector.ready.metricsPort],
  ] as const) {
    const check = spawnSync(process.execPath, [healthcheckScript], {
      env: { HEALTHCHECK_PORT: String(port) },
    });
    expect(check.status, String(program.child.pid)).toBe(0);
  }

  expect(await collector.stop()).toBe(0);
  expect(await aggregator.stop()).toBe(0);
}

describe('the npm package', () => {
  it('packs dist, api/api.proto and deploy only; a global install from the tarball gives working mega-aggregator and mega-collector', async () => {
    const pack = join(dir, 'pack');
    mkdirSync(pack);
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--pack-destination', pack, '--loglevel=error'], { cwd: root, encoding: 'utf8', timeout: 60_000 }),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = (packed?.files ?? []).map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'api/api.proto', 'dist/cmd/aggregator/main.js', 'dist/cmd/collector/main.js', 'dist/src/util/package-info.js', 'deploy/systemd/mega-aggregator.service']) {
      expect(files, f).toContain(f);
    }
    for (const f of files) expect(f, `${f} should not be in the package`).not.toMatch(/^(src|test|bench|cmd|dist\/bench|node_modules)\/|\.ts$/);

    const prefix = join(dir, 'prefix');
    execFileSync('npm', ['install', '--global', '--prefix', prefix, join(pack, packed?.filename ?? ''), '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
      stdio: 'pipe',
      timeout: 120_000,
    });
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    for (const program of ['mega-aggregator', 'mega-collector']) {
      // The bin links npm made, run directly: shebang, exec bit and module resolution from the install.
      const out = execFileSync(join(prefix, 'bin', program), ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
      expect(out).toBe(`${program} ${version}\n`);
    }
    const installed = join(prefix, 'lib', 'node_modules', 'mega-collector');
    expect(existsSync(join(installed, 'node_modules', 'vitest'))).toBe(false);
    await shipOneLine(join(prefix, 'bin', 'mega-aggregator'), join(prefix, 'bin', 'mega-collector'), join(installed, 'dist/cmd/healthcheck/main.js'));
  }, 180_000);
});

import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningProgram } from '../../support/program.js';
import { shipOneLineWithComposeEnv } from '../helpers/compose-ship.js';

/**
 * What the Docker image does, without a Docker engine: a clean copy with production dependencies only
 * (`npm ci --omit=dev`) and dist/ + api/, both programs started from it with the compose file's
 * environment (paths and ports moved to a temp dir and loopback), and a line shipped end to end.
 * And what `npm install -g` of the package does: `npm pack`, a global install of the tarball into a
 * temp prefix, both installed commands run (--version, and a line shipped end to end).
 */
const root = resolve('.');
// Asynchronous: a long synchronous npm call would block the test worker past vitest's RPC timeout.
const run = promisify(execFile);
let dir: string;
let app: string;
const running: RunningProgram[] = [];

beforeAll(async () => {
  expect(existsSync(join(root, 'dist/cmd/aggregator/main.js')), 'run npm run build first').toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'mc-image-'));
  app = join(dir, 'app');
  mkdirSync(app);
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(root, f), join(app, f));
  for (const d of ['dist', 'api']) cpSync(join(root, d), join(app, d), { recursive: true });
  await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: app,
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
    await shipOneLineWithComposeEnv({
      aggregatorScript: join(app, 'dist/cmd/aggregator/main.js'),
      collectorScript: join(app, 'dist/cmd/collector/main.js'),
      healthcheckScript: join(app, 'dist/cmd/healthcheck/main.js'),
      dir,
      track: (p) => running.push(p),
    });
  }, 60_000);
});

describe('the npm package', () => {
  it('packs dist, api/api.proto and deploy only; a global install from the tarball gives working mega-aggregator and mega-collector', async () => {
    const pack = join(dir, 'pack');
    mkdirSync(pack);
    const [packed] = JSON.parse(
      (await run('npm', ['pack', '--json', '--pack-destination', pack, '--loglevel=error'], { cwd: root, encoding: 'utf8', timeout: 60_000 })).stdout,
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = (packed?.files ?? []).map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'api/api.proto', 'dist/cmd/aggregator/main.js', 'dist/cmd/collector/main.js', 'dist/src/util/package-info.js', 'deploy/systemd/mega-aggregator.service']) {
      expect(files, f).toContain(f);
    }
    for (const f of files) expect(f, `${f} should not be in the package`).not.toMatch(/^(src|test|bench|cmd|dist\/bench|node_modules)\/|\.ts$/);

    const prefix = join(dir, 'prefix');
    await run('npm', ['install', '--global', '--prefix', prefix, join(pack, packed?.filename ?? ''), '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
      timeout: 120_000,
    });
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    for (const program of ['mega-aggregator', 'mega-collector']) {
      // The bin links npm made, run directly: shebang, exec bit and module resolution from the install.
      const { stdout: out } = await run(join(prefix, 'bin', program), ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH } });
      expect(out).toBe(`${program} ${version}\n`);
    }
    const installed = join(prefix, 'lib', 'node_modules', 'mega-collector');
    expect(existsSync(join(installed, 'node_modules', 'vitest'))).toBe(false);
    await shipOneLineWithComposeEnv({
      aggregatorScript: join(prefix, 'bin', 'mega-aggregator'),
      collectorScript: join(prefix, 'bin', 'mega-collector'),
      healthcheckScript: join(installed, 'dist/cmd/healthcheck/main.js'),
      dir,
      track: (p) => running.push(p),
    });
  }, 180_000);
});

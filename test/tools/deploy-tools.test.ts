import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The deployment files checked by the tools that read them: Prometheus's promtool (Debian package
 * `prometheus`) and systemd-analyze (package `systemd`). Run by `npm run test:tools` (CI installs the
 * tools first); a missing tool fails the test with the package to install, never a silent pass.
 */
function tool(name: string, pkg: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error(`${name} is not installed: apt-get install -y ${pkg} (npm run test:tools needs it)`);
  return found.stdout.trim();
}

function run(cmd: string, args: string[], cwd?: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd, timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const dir = mkdtempSync(join(tmpdir(), 'mc-tools-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('deploy/prometheus with promtool', () => {
  it('promtool check rules: the alert rules are valid', () => {
    const r = run(tool('promtool', 'prometheus'), ['check', 'rules', 'deploy/prometheus/alerts.yml']);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status, r.out).toBe(0);
  });

  it('promtool check config: the compose Prometheus configuration (with its rule file) is valid', () => {
    const r = run(tool('promtool', 'prometheus'), ['check', 'config', 'deploy/prometheus/prometheus.yml']);
    expect(r.status, r.out).toBe(0);
  });

  it('promtool test rules: each loss alert fires on its first event and not before', () => {
    const r = run(tool('promtool', 'prometheus'), ['test', 'rules', 'deploy/prometheus/alerts.test.yml']);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it('promtool rejects a broken rule (the check can fail)', () => {
    const broken = join(dir, 'broken.yml');
    writeFileSync(broken, readFileSync('deploy/prometheus/alerts.yml', 'utf8').replace('increase(mega_collector_lines_dropped_total[5m])', 'increase(mega_collector_lines_dropped_total[5m]'));
    const r = run(tool('promtool', 'prometheus'), ['check', 'rules', broken]);
    expect(r.status).not.toBe(0);
  });
});

describe('deploy/systemd with systemd-analyze', () => {
  it('systemd-analyze verify: the units are valid (ExecStart pointed at an existing program)', () => {
    const analyze = tool('systemd-analyze', 'systemd');
    const units = readdirSync('deploy/systemd').filter((f) => f.endsWith('.service'));
    expect(units.length).toBe(2);
    // The installed path (/usr/local/bin/mega-*) does not exist here; the packaging test checks that an
    // npm global install creates <prefix>/bin/mega-*. Verify the rest of each unit.
    const copies = units.map((u) => {
      const copy = join(dir, u);
      writeFileSync(copy, readFileSync(join('deploy/systemd', u), 'utf8').replace(/^ExecStart=\/usr\/local\/bin\/mega-\w+/m, `ExecStart=${process.execPath}`));
      return copy;
    });
    const r = run(analyze, ['verify', ...copies]);
    expect(r.out.trim(), r.out).toBe('');
    expect(r.status, r.out).toBe(0);
  });
});

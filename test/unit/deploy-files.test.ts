import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { aggregatorOptions, loadAggregatorConfig } from '../../src/config/aggregator-config.js';
import { collectorOptions, loadCollectorConfig } from '../../src/config/collector-config.js';
import type { OptionTable } from '../../src/config/options.js';

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: string[];
  ports?: string[];
}

const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};

/** Compose's ${VAR:-default} interpolation, with an empty environment. */
function interpolate(value: string): string {
  return String(value).replace(/\$\{(\w+):-([^}]*)\}/g, (_, _name: string, dflt: string) => dflt);
}

function envNames(table: OptionTable): Set<string> {
  return new Set(Object.values(table).map((spec) => spec.env));
}

const ours = Object.entries(compose.services).filter(([, s]) => s.image === 'mega-collector:local');

describe('docker-compose.yml', () => {
  it('has one aggregator and two collectors built from this repository', () => {
    const programs = ours.map(([, s]) => s.command?.[0]);
    expect(programs.filter((p) => p === 'mega-aggregator')).toHaveLength(1);
    expect(programs.filter((p) => p === 'mega-collector')).toHaveLength(2);
    for (const [, s] of ours) expect(s.build).toBe('.');
  });

  it('uses only env names the programs know, with values their config accepts', () => {
    for (const [name, s] of ours) {
      const program = s.command?.[0];
      const known = program === 'mega-aggregator' ? envNames(aggregatorOptions) : envNames(collectorOptions);
      const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(v)]));
      for (const key of Object.keys(env)) expect(known.has(key), `${name}: ${key}`).toBe(true);
      if (program === 'mega-aggregator') expect(() => loadAggregatorConfig(env)).not.toThrow();
      else expect(() => loadCollectorConfig(env)).not.toThrow();
    }
  });

  it('points every collector at the aggregator service and its listen port', () => {
    const aggregator = ours.find(([, s]) => s.command?.[0] === 'mega-aggregator');
    expect(aggregator).toBeDefined();
    const [aggName, agg] = aggregator as [string, ComposeService];
    const listenPort = /:(\d+)$/.exec(agg.environment?.AGGREGATOR_LISTEN_ADDRESS ?? '')?.[1];
    for (const [, s] of ours.filter(([, x]) => x.command?.[0] === 'mega-collector')) {
      expect(s.environment?.COLLECTOR_REMOTE_ADDRESS).toBe(`${aggName}:${listenPort}`);
      expect(s.depends_on).toContain(aggName);
    }
  });

  it('shares one log volume between the collectors and the log generator, and declares every named volume', () => {
    const mounts = (s: ComposeService): string[] => (s.volumes ?? []).map((v) => v.split(':')[0] as string);
    const collectors = ours.filter(([, s]) => s.command?.[0] === 'mega-collector').map(([, s]) => s);
    const shared = mounts(collectors[0] as ComposeService).filter((m) => mounts(collectors[1] as ComposeService).includes(m) && !m.startsWith('.'));
    expect(shared).toEqual(['logs']);
    expect(mounts(compose.services.loggen as ComposeService)).toContain('logs');
    for (const s of Object.values(compose.services)) {
      for (const m of mounts(s)) if (!m.startsWith('.') && !m.startsWith('/')) expect(compose.volumes).toHaveProperty(m);
    }
  });

  it('keeps each collector state on its own volume (two collectors must not share checkpoints)', () => {
    const state = ours
      .filter(([, s]) => s.command?.[0] === 'mega-collector')
      .map(([, s]) => (s.volumes ?? []).find((v) => v.endsWith(':/var/lib/mega-collector')));
    expect(new Set(state).size).toBe(2);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync('Dockerfile', 'utf8');

  it('builds in one stage and runs production dependencies and dist/ only, as a non-root user', () => {
    const stages = dockerfile.split(/^FROM /m).slice(1);
    expect(stages).toHaveLength(2);
    const runtime = stages[1] as string;
    expect(runtime).toMatch(/npm ci --omit=dev/);
    expect(runtime).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    expect(runtime).not.toMatch(/COPY (src|test|cmd) /);
    expect(runtime).toMatch(/^USER node$/m);
  });

  it('checks health through /healthz with the compiled healthcheck, and exposes the default ports', () => {
    expect(dockerfile).toMatch(/HEALTHCHECK[\s\S]*dist\/cmd\/healthcheck\/main\.js/);
    expect(readFileSync('cmd/healthcheck/main.ts', 'utf8')).toContain("path: '/healthz'");
    expect(dockerfile).toMatch(/EXPOSE 8000 9464 9465/);
  });

  it('leaves the tests and local state out of the build context', () => {
    const ignore = readFileSync('.dockerignore', 'utf8').split('\n');
    for (const entry of ['node_modules', 'dist', 'data', 'test', '.git']) expect(ignore).toContain(entry);
  });
});

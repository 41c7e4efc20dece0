import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { aggregatorOptions, loadAggregatorConfig } from '../../src/config/aggregator-config.js';
import { collectorOptions, loadCollectorConfig } from '../../src/config/collector-config.js';
import { parseGoDuration } from '../../src/config/duration.js';
import type { OptionTable } from '../../src/config/options.js';
import { composeEnvs, kubernetesEnvs, podSpec, readCompose, readEnvironmentFile, readKubernetes, systemdEnvs, systemdUnits } from '../helpers/deploy-envs.js';
import type { ComposeService, DeploymentEnv, K8sContainer, K8sObject, Program } from '../helpers/deploy-envs.js';

const compose = readCompose();

function envNames(table: OptionTable): Set<string> {
  return new Set(Object.values(table).map((spec) => spec.env));
}

/** The shutdown deadline a program gets from `env` (its option's default when unset). */
function shutdownTimeoutMs(program: Program, env: Record<string, string>): number {
  return program === 'mega-aggregator' ? loadAggregatorConfig(withoutTls(env)).shutdownTimeoutMs : loadCollectorConfig(withoutTls(env)).shutdownTimeoutMs;
}

/** Past the shutdown deadline the aggregator may still close its emitter (>= 1 s) and notifier (2 s). */
const GRACE_MARGIN_MS = 5000;

/** TLS material is read from files when TLS is on; pure tests parse with it off (the integration test reads real files). */
function withoutTls(env: Record<string, string>): Record<string, string> {
  return { ...env, ...('AGGREGATOR_TLS' in env ? { AGGREGATOR_TLS: '0' } : {}), ...('COLLECTOR_TLS' in env ? { COLLECTOR_TLS: '0' } : {}) };
}

function checkAgainstSchema(d: DeploymentEnv): void {
  const known = d.program === 'mega-aggregator' ? envNames(aggregatorOptions) : envNames(collectorOptions);
  for (const key of Object.keys(d.env)) expect(known.has(key), `${d.where}: ${key} is not an option of ${d.program}`).toBe(true);
  const load = d.program === 'mega-aggregator' ? loadAggregatorConfig : loadCollectorConfig;
  expect(() => load(withoutTls(d.env)), d.where).not.toThrow();
  const prefix = d.program === 'mega-aggregator' ? 'AGGREGATOR' : 'COLLECTOR';
  if (d.env[`${prefix}_TLS`] === '1') {
    for (const v of ['CERTIFICATE', 'KEY', 'CA_CERTIFICATE']) expect(d.env[`${prefix}_TLS_${v}`], `${d.where}: ${prefix}_TLS_${v}`).toMatch(/^\//);
  }
}

const durationMs = (text: string | undefined): number => parseGoDuration(text ?? '');

const ours = Object.entries(compose.services).filter(([, s]) => s.image === 'mega-collector:local');

describe('docker-compose.yml', () => {
  it('has one aggregator and two collectors built from this repository', () => {
    const programs = ours.map(([, s]) => s.command?.[0]);
    expect(programs.filter((p) => p === 'mega-aggregator')).toHaveLength(1);
    expect(programs.filter((p) => p === 'mega-collector')).toHaveLength(2);
    for (const [, s] of ours) expect(s.build).toBe('.');
  });

  it('uses only env names the programs know, with values their config accepts', () => {
    const envs = composeEnvs();
    expect(envs).toHaveLength(3);
    for (const d of envs) {
      checkAgainstSchema(d);
      // Without MC_TLS the channel is plaintext, as the file's header says.
      expect(d.env.AGGREGATOR_TLS ?? d.env.COLLECTOR_TLS, d.where).toBe('0');
    }
    for (const d of composeEnvs({ MC_TLS: '1' })) expect(d.env.AGGREGATOR_TLS ?? d.env.COLLECTOR_TLS, d.where).toBe('1');
  });

  it('points every collector at the aggregator service and its listen port', () => {
    const aggregator = ours.find(([, s]) => s.command?.[0] === 'mega-aggregator');
    expect(aggregator).toBeDefined();
    const [aggName, agg] = aggregator as [string, ComposeService];
    const listenPort = /:(\d+)$/.exec(agg.environment?.AGGREGATOR_LISTEN_ADDRESS ?? '')?.[1];
    for (const [, s] of ours.filter(([, x]) => x.command?.[0] === 'mega-collector')) {
      expect(s.environment?.COLLECTOR_REMOTE_ADDRESS).toBe(`${aggName}:${listenPort}`);
      expect(s.depends_on).toContain(aggName);
      expect(aggName).toBe('aggregator'); // the name deploy/dev-certs.sh puts in the server certificate
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

describe('docker-compose.yml: the whole system', () => {
  const programs = ours.map(([name, s]) => ({ name, s, program: s.command?.[0] as Program }));

  it('gives each program a stop_grace_period above its shutdown timeout', () => {
    for (const d of composeEnvs()) {
      const name = d.where.split(': ')[1] as string;
      const grace = durationMs(compose.services[name]?.stop_grace_period);
      expect(grace, `${name}: stop_grace_period`).toBeGreaterThanOrEqual(shutdownTimeoutMs(d.program, d.env) + GRACE_MARGIN_MS);
    }
  });

  it('publishes no plaintext port of ours on the host; only Prometheus and Grafana, on loopback', () => {
    for (const { name, s } of programs) {
      expect(s.ports, `${name} publishes ports`).toBeUndefined();
      expect(s.expose?.length, `${name} exposes its ports to the compose network`).toBeGreaterThan(0);
    }
    const published = Object.entries(compose.services).flatMap(([name, s]) => (s.ports ?? []).map((p) => [name, String(p)] as const));
    expect(published.map(([name]) => name).sort()).toEqual(['grafana', 'prometheus']);
    for (const [name, p] of published) expect(p, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('has Prometheus scrape every program at its metrics port, with the alert rules loaded', () => {
    const prom = compose.services.prometheus as ComposeService;
    const mounted = new Map((prom.volumes ?? []).map((v) => v.split(':') as [string, string, string?]).map(([from, to]) => [to, from]));
    const configPath = mounted.get('/etc/prometheus/prometheus.yml');
    expect(configPath).toBe('./deploy/prometheus/prometheus.yml');
    const config = parse(readFileSync(configPath as string, 'utf8')) as {
      rule_files: string[];
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    };
    for (const rules of config.rule_files) expect(mounted.get(`/etc/prometheus/${rules}`), rules).toBe(`./deploy/prometheus/${rules}`);
    const targets = new Map(config.scrape_configs.map((j) => [j.job_name, j.static_configs.flatMap((c) => c.targets)]));
    for (const { name, s, program } of programs) {
      const port = /:(\d+)$/.exec(s.environment?.AGGREGATOR_METRICS_ADDRESS ?? s.environment?.COLLECTOR_METRICS_ADDRESS ?? '')?.[1];
      expect(targets.get(program), name).toContain(`${name}:${String(port)}`);
      expect(s.expose, name).toContain(String(port));
    }
  });

  it('provisions Grafana with the Prometheus data source and the dashboard', () => {
    const grafana = compose.services.grafana as ComposeService;
    const mounted = new Map((grafana.volumes ?? []).map((v) => v.split(':') as [string, string]).map(([from, to]) => [to, from]));
    const datasources = mounted.get('/etc/grafana/provisioning/datasources') as string;
    const dashboards = mounted.get('/etc/grafana/provisioning/dashboards') as string;
    const ds = parse(readFileSync(join(datasources, 'prometheus.yml'), 'utf8')) as { datasources: Array<{ type: string; url: string; isDefault: boolean }> };
    expect(ds.datasources).toEqual([expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true })]);
    const provider = parse(readFileSync(join(dashboards, 'mega-collector.yml'), 'utf8')) as { providers: Array<{ type: string; options: { path: string } }> };
    const path = provider.providers[0]?.options.path;
    expect(mounted.get(`${String(path)}/mega-collector.json`)).toBe('./deploy/grafana/mega-collector.json');
    expect(grafana.depends_on).toContain('prometheus');
  });

  it('writes the shipped file to a bind mount, visible on the host, owned by the image user', () => {
    const agg = compose.services.aggregator as ComposeService;
    const file = (JSON.parse(agg.environment?.AGGREGATOR_FILE_CONFIGURATION ?? '{}') as { path: string }).path;
    const bind = (agg.volumes ?? []).map((v) => v.split(':')).find(([, to]) => to !== undefined && file.startsWith(`${to}/`));
    expect(bind?.[0]).toBe('./shipped');
    const init = compose.services['shipped-dir'] as ComposeService;
    expect(init.volumes).toContain('./shipped:/shipped');
    expect(init.command?.join(' ')).toMatch(/chown 1000:1000 \/shipped/);
    expect(agg.depends_on).toEqual({ 'shipped-dir': { condition: 'service_completed_successfully' } });
    // The spool stays on a named volume (not on the host's bind mount).
    expect(agg.volumes).toContain('aggregator-data:/var/lib/mega-collector');
    expect(readFileSync('.gitignore', 'utf8').split('\n')).toEqual(expect.arrayContaining(['/shipped/', '/certs/']));
  });

  it('reads its TLS material from ./certs, the files deploy/dev-certs.sh writes', () => {
    const script = readFileSync('deploy/dev-certs.sh', 'utf8');
    expect(script).toMatch(/dir=\$\{1:-certs\}/);
    for (const { name, s } of programs) {
      expect(s.volumes, name).toContain('./certs:/certs:ro');
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (!/_TLS_/.test(key)) continue;
        const file = /^\/certs\/(ca|server|client)\.(crt|key)$/.exec(value);
        expect(file, `${name}: ${key}=${value}`).not.toBeNull();
      }
    }
  });
});

describe('deploy/kubernetes', () => {
  const objects = readKubernetes();
  const byKind = (kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);
  const spec = (o: K8sObject | undefined): Record<string, unknown> => (o as unknown as { spec: Record<string, unknown> }).spec;
  const aggregator = byKind('StatefulSet')[0] as K8sObject;
  const collector = byKind('DaemonSet')[0] as K8sObject;

  it('has a collector DaemonSet, an aggregator StatefulSet, Services and a PodDisruptionBudget', () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(['DaemonSet', 'Namespace', 'PodDisruptionBudget', 'Service', 'Service', 'StatefulSet']);
    const kustomization = parse(readFileSync('deploy/kubernetes/kustomization.yaml', 'utf8')) as { resources: string[] };
    expect(kustomization.resources.sort()).toEqual(['aggregator.yaml', 'collector.yaml', 'namespace.yaml']);
  });

  it('uses only env names the programs know, with values their config accepts', () => {
    const envs = kubernetesEnvs();
    expect(envs.map((d) => d.program).sort()).toEqual(['mega-aggregator', 'mega-collector']);
    for (const d of envs) checkAgainstSchema(d);
  });

  it('selectors match the pod labels; the collector dials the aggregator Service; the StatefulSet names its headless Service', () => {
    for (const o of [aggregator, collector, ...byKind('PodDisruptionBudget')]) {
      const s = spec(o) as { selector: { matchLabels: Record<string, string> }; template?: { metadata: { labels: Record<string, string> } } };
      const labels = (s.template ?? (spec(aggregator) as { template: { metadata: { labels: Record<string, string> } } }).template).metadata.labels;
      expect(labels, o.metadata.name).toEqual(expect.objectContaining(s.selector.matchLabels));
    }
    const services = byKind('Service');
    const headless = services.find((o) => spec(o).clusterIP === 'None');
    expect(spec(aggregator).serviceName).toBe(headless?.metadata.name);
    const service = services.find((o) => spec(o).clusterIP === undefined) as K8sObject;
    const grpcPort = (spec(service).ports as Array<{ name: string; port: number; targetPort: string }>).find((p) => p.name === 'grpc');
    const collectorEnv = kubernetesEnvs().find((d) => d.program === 'mega-collector')?.env ?? {};
    expect(collectorEnv.COLLECTOR_REMOTE_ADDRESS).toBe(`${service.metadata.name}:${String(grpcPort?.port)}`);
    expect(service.metadata.name).toBe('aggregator'); // the name deploy/dev-certs.sh puts in the server certificate
    const aggContainer = podSpec(aggregator).containers[0];
    const listen = kubernetesEnvs().find((d) => d.program === 'mega-aggregator')?.env.AGGREGATOR_LISTEN_ADDRESS;
    expect(aggContainer?.ports?.find((p) => p.name === grpcPort?.targetPort)?.containerPort).toBe(Number(/:(\d+)$/.exec(listen ?? '')?.[1]));
  });

  it('probes /readyz and /healthz on the metrics port, and waits past the shutdown timeout before SIGKILL', () => {
    for (const o of [aggregator, collector]) {
      const pod = podSpec(o);
      const c = pod.containers[0] as K8sContainer;
      const d = kubernetesEnvs().find((x) => x.where.includes(`/${o.metadata.name}:`)) as DeploymentEnv;
      const metricsPort = Number(/:(\d+)$/.exec(d.env.AGGREGATOR_METRICS_ADDRESS ?? d.env.COLLECTOR_METRICS_ADDRESS ?? '')?.[1]);
      expect(c.ports?.find((p) => p.name === 'metrics')?.containerPort, o.metadata.name).toBe(metricsPort);
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
      expect((pod.terminationGracePeriodSeconds ?? 30) * 1000, o.metadata.name).toBeGreaterThanOrEqual(shutdownTimeoutMs(d.program, d.env) + GRACE_MARGIN_MS);
    }
    expect(readFileSync('src/telemetry/http-server.ts', 'utf8')).toMatch(/startsWith\('\/readyz'\)/);
  });

  it('keeps the aggregator spool on a volume claim and the collector state on the node, reading the node /var/log', () => {
    const claims = spec(aggregator).volumeClaimTemplates as Array<{ metadata: { name: string } }>;
    const aggC = podSpec(aggregator).containers[0] as K8sContainer;
    const spoolDir = kubernetesEnvs().find((d) => d.program === 'mega-aggregator')?.env.AGGREGATOR_SPOOL_DIR ?? '';
    const spoolMount = aggC.volumeMounts?.find((m) => spoolDir.startsWith(`${m.mountPath}/`) || spoolDir === m.mountPath);
    expect(claims.map((c) => c.metadata.name)).toContain(spoolMount?.name);

    const pod = podSpec(collector);
    const colC = pod.containers[0] as K8sContainer;
    const env = kubernetesEnvs().find((d) => d.program === 'mega-collector')?.env ?? {};
    const hostPathOf = (mountPath: string): string | undefined => {
      const m = colC.volumeMounts?.find((x) => mountPath === x.mountPath || mountPath.startsWith(`${x.mountPath}/`));
      return pod.volumes?.find((v) => v.name === m?.name)?.hostPath?.path;
    };
    expect(hostPathOf(env.COLLECTOR_STATE_DIR ?? '')).toBe('/var/lib/mega-collector/collector');
    expect(colC.volumeMounts?.find((m) => m.mountPath === '/var/log')).toEqual(expect.objectContaining({ readOnly: true }));
    expect(hostPathOf('/var/log')).toBe('/var/log');
    for (const glob of (env.COLLECTOR_FILES ?? '').split(',')) expect(glob.startsWith('/var/log/'), glob).toBe(true);
    expect(env.COLLECTOR_ID).toBe('node-1'); // from spec.nodeName: one identity per node, kept across pods
  });

  it('mounts the TLS secret where the certificate variables point', () => {
    for (const o of [aggregator, collector]) {
      const pod = podSpec(o);
      const c = pod.containers[0] as K8sContainer;
      const d = kubernetesEnvs().find((x) => x.where.includes(`/${o.metadata.name}:`)) as DeploymentEnv;
      for (const [key, value] of Object.entries(d.env).filter(([k]) => /_TLS_/.test(k))) {
        const m = c.volumeMounts?.find((x) => value.startsWith(`${x.mountPath}/`));
        expect(pod.volumes?.find((v) => v.name === m?.name)?.secret?.secretName, `${o.metadata.name}: ${key}`).toBe('mega-collector-tls');
      }
    }
  });
});

describe('deploy/systemd', () => {
  const units = systemdUnits();

  it('has a unit per program reading its settings with EnvironmentFile=', () => {
    expect(units.map((u) => u.program).sort()).toEqual(['mega-aggregator', 'mega-collector']);
    const bins = Object.keys((JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> }).bin);
    for (const u of units) {
      expect(u.sections.Service?.EnvironmentFile?.[0], u.unit).toMatch(/^\/etc\/mega-collector\/\w+\.env$/);
      expect(bins).toContain(u.program);
      expect(u.sections.Service?.ExecStart?.[0]).toBe(`/usr/local/bin/${u.program}`);
      expect(u.sections.Service?.RestartPreventExitStatus, 'exit 2 is a configuration error').toEqual(['2']);
      expect(u.sections.Install?.WantedBy).toEqual(['multi-user.target']);
    }
  });

  it('its environment files use only env names the programs know, with values their config accepts', () => {
    for (const d of systemdEnvs()) checkAgainstSchema(d);
  });

  it('waits past the shutdown timeout before SIGKILL, and gives the aggregator its spool and output directories', () => {
    for (const u of units) {
      const env = readEnvironmentFile(u.envFile);
      expect(u.sections.Service?.KillSignal).toEqual(['SIGTERM']);
      expect(durationMs(u.sections.Service?.TimeoutStopSec?.[0]), u.unit).toBeGreaterThanOrEqual(shutdownTimeoutMs(u.program, env) + GRACE_MARGIN_MS);
      const stateDir = `/var/lib/${u.sections.Service?.StateDirectory?.[0] ?? ''}`;
      expect(env.AGGREGATOR_SPOOL_DIR ?? env.COLLECTOR_STATE_DIR, u.unit).toBe(stateDir);
    }
    const agg = units.find((u) => u.program === 'mega-aggregator');
    const env = readEnvironmentFile(agg?.envFile ?? '');
    const out = (JSON.parse(env.AGGREGATOR_FILE_CONFIGURATION ?? '{}') as { path: string }).path;
    expect(out.startsWith(`/var/log/${agg?.sections.Service?.LogsDirectory?.[0] ?? ''}/`)).toBe(true);
  });
});

describe('package.json', () => {
  it('ships only what the programs need (files whitelist)', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { files: string[] };
    expect(pkg.files.sort()).toEqual(['api/api.proto', 'deploy', 'dist/cmd', 'dist/src']);
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
    // shipped/ and certs/ (compose's bind mounts, with development keys) stay out of the image's context.
    for (const entry of ['node_modules', 'dist', 'data', 'test', '.git', 'shipped', 'certs']) expect(ignore).toContain(entry);
  });
});

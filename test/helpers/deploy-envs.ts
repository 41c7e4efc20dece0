import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

/**
 * The program environments the deployment files define: docker-compose.yml services, Kubernetes
 * containers (deploy/kubernetes) and systemd EnvironmentFiles (deploy/systemd), read the way each tool
 * reads them, so tests can check them against the programs' own configuration schema.
 */
export type Program = 'mega-aggregator' | 'mega-collector';

export interface DeploymentEnv {
  /** Where it comes from, for messages: "docker-compose.yml: aggregator". */
  readonly where: string;
  readonly program: Program;
  readonly env: Record<string, string>;
}

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: string[] | Record<string, { condition: string }>;
  ports?: string[];
  expose?: string[];
  stop_grace_period?: string;
  user?: string;
}

export interface Compose {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
}

export function readCompose(): Compose {
  return parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as Compose;
}

/** Compose's `${VAR:-default}` interpolation with the given variables (none: every default). */
export function interpolate(value: string, vars: Record<string, string> = {}): string {
  return String(value).replace(/\$\{(\w+):-([^}]*)\}/g, (_, name: string, dflt: string) => vars[name] ?? dflt);
}

export function composeEnvs(vars: Record<string, string> = {}): DeploymentEnv[] {
  const out: DeploymentEnv[] = [];
  for (const [name, s] of Object.entries(readCompose().services)) {
    const program = s.command?.[0];
    if (program !== 'mega-aggregator' && program !== 'mega-collector') continue;
    const env = Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(v, vars)]));
    out.push({ where: `docker-compose.yml: ${name}`, program, env });
  }
  return out;
}

/** A Kubernetes object, loosely typed: tests reach into it by path. */
export type K8sObject = { kind: string; metadata: { name: string } } & Record<string, unknown>;

export function readKubernetes(): K8sObject[] {
  const dir = 'deploy/kubernetes';
  const objects: K8sObject[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message ?? 'YAML error'}`);
      const value = doc.toJS() as K8sObject | null;
      if (value !== null) objects.push(value);
    }
  }
  return objects;
}

export interface K8sContainer {
  name: string;
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name: string; containerPort: number }>;
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

export interface K8sPodSpec {
  terminationGracePeriodSeconds?: number;
  containers: K8sContainer[];
  volumes?: Array<{ name: string; hostPath?: { path: string }; secret?: { secretName: string } }>;
}

export function podSpec(o: K8sObject): K8sPodSpec {
  return (o as unknown as { spec: { template: { spec: K8sPodSpec } } }).spec.template.spec;
}

/** Values the downward API would give, for env entries that use `valueFrom`. */
const FIELD_SAMPLES: Record<string, string> = { 'spec.nodeName': 'node-1', 'metadata.name': 'pod-0', 'metadata.namespace': 'mega-collector' };

export function kubernetesEnvs(): DeploymentEnv[] {
  const out: DeploymentEnv[] = [];
  for (const o of readKubernetes()) {
    if (o.kind !== 'StatefulSet' && o.kind !== 'DaemonSet' && o.kind !== 'Deployment') continue;
    for (const c of podSpec(o).containers) {
      const program = c.args?.[0];
      if (program !== 'mega-aggregator' && program !== 'mega-collector') throw new Error(`${o.metadata.name}/${c.name}: runs ${String(program)}`);
      const env: Record<string, string> = {};
      for (const e of c.env ?? []) {
        const field = e.valueFrom?.fieldRef?.fieldPath;
        const value = e.value ?? (field === undefined ? undefined : FIELD_SAMPLES[field]);
        if (value === undefined) throw new Error(`${o.metadata.name}/${c.name}: ${e.name} has no value the test can sample`);
        env[e.name] = value;
      }
      out.push({ where: `deploy/kubernetes ${o.kind}/${o.metadata.name}: ${c.name}`, program, env });
    }
  }
  return out;
}

/** A systemd unit's [Section] Key=Value lines (later keys of the same name are appended). */
export function readUnit(path: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let current: Record<string, string[]> | undefined;
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = sections[section[1] as string] = {};
      continue;
    }
    const eq = line.indexOf('=');
    if (current === undefined || eq < 0) throw new Error(`${path}: cannot read "${line}"`);
    (current[line.slice(0, eq).trim()] ??= []).push(line.slice(eq + 1).trim());
  }
  return sections;
}

/**
 * systemd's EnvironmentFile= syntax: KEY=VALUE lines, `#`/`;` comments, a value in single quotes taken
 * as is, in double quotes with backslash escapes.
 */
export function readEnvironmentFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`${path}: not KEY=VALUE: "${line}"`);
    let value = m[2] as string;
    if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) value = value.slice(1, -1);
    else if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    env[m[1] as string] = value;
  }
  return env;
}

export const SYSTEMD_DIR = 'deploy/systemd';

/** Each unit with its program and the repository file that its EnvironmentFile= installs from. */
export function systemdUnits(): Array<{ unit: string; program: Program; envFile: string; sections: Record<string, Record<string, string[]>> }> {
  return readdirSync(SYSTEMD_DIR)
    .filter((f) => f.endsWith('.service'))
    .sort()
    .map((unit) => {
      const sections = readUnit(join(SYSTEMD_DIR, unit));
      const exec = sections.Service?.ExecStart?.[0] ?? '';
      const program = exec.split(/\s+/)[0]?.split('/').pop();
      if (program !== 'mega-aggregator' && program !== 'mega-collector') throw new Error(`${unit}: ExecStart runs ${exec}`);
      const installed = sections.Service?.EnvironmentFile?.[0] ?? '';
      const envFile = join(SYSTEMD_DIR, installed.split('/').pop() ?? '');
      return { unit, program, envFile, sections };
    });
}

export function systemdEnvs(): DeploymentEnv[] {
  return systemdUnits().map(({ unit, program, envFile }) => ({ where: `${unit} (${envFile})`, program, env: readEnvironmentFile(envFile) }));
}

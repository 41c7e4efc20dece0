import { ConfigError } from '../errors.js';
import { resolveOptions } from './options.js';
import type { OptionTable, OptionValues } from './options.js';

/**
 * A mistyped variable (AGGREGATOR_FILE_CONFIG for AGGREGATOR_FILE_CONFIGURATION) would otherwise be
 * ignored and the default (the blackhole) would run. Every variable with the program's prefix must
 * be one of its options; a problem names it and the closest known name.
 */

/**
 * Variables Kubernetes injects for every Service in the namespace whose name gives the prefix (a
 * Service "aggregator" or "aggregator-metrics" yields AGGREGATOR_SERVICE_HOST,
 * AGGREGATOR_METRICS_PORT_9464_TCP_ADDR, ...); Docker's legacy links use the same PORT forms. They
 * are not ours, and refusing them would stop the pod. A bare `..._PORT` counts only with a
 * `tcp://`-style value, so a mistyped `AGGREGATOR_LISTEN_PORT=9000` is still reported.
 */
const SERVICE_LINK = /_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)$/;
const SERVICE_LINK_PORT = /_PORT$/;
const LINK_URL = /^(tcp|udp|sctp):\/\//;

function isServiceLink(name: string, value: string | undefined): boolean {
  return SERVICE_LINK.test(name) || (SERVICE_LINK_PORT.test(name) && LINK_URL.test(value ?? ''));
}

/** Levenshtein distance (small strings: O(a·b) with one row). */
export function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next.push(Math.min((row[j] as number) + 1, (next[j - 1] as number) + 1, (row[j - 1] as number) + cost));
    }
    row = next;
  }
  return row[b.length] as number;
}

/**
 * The known name nearest to `name`: an abbreviation (a known name starts with it) first, the
 * shortest such; otherwise the smallest edit distance.
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  const extended = known.filter((candidate) => candidate.startsWith(name)).sort((a, b) => a.length - b.length);
  if (extended.length > 0) return extended[0];
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const score = editDistance(name, candidate);
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}

/** One problem per variable in `env` that starts with `prefix` and is not in `table`. */
export function unknownVariableProblems(env: NodeJS.ProcessEnv, prefix: string, table: OptionTable): string[] {
  const known = Object.values(table).map((spec) => spec.env);
  const knownSet = new Set(known);
  const problems: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(prefix) || knownSet.has(name) || isServiceLink(name, env[name])) continue;
    const near = closestName(name, known.filter((k) => k.startsWith(prefix)));
    problems.push(`${name}: unknown variable${near === undefined ? '' : `; did you mean ${near}?`} (see --help)`);
  }
  return problems;
}

/** Variables among `names` that are set (non-empty) in `env`. */
export function setVariables(env: NodeJS.ProcessEnv, names: readonly string[]): string[] {
  return names.filter((name) => env[name] !== undefined && env[name] !== '');
}

/**
 * resolveOptions, plus a problem for each unknown variable with the program's prefix. Problems of
 * both kinds go into one ConfigError (a typo first: it is the likely root of the others); the
 * unknown-variable problems are returned for the caller's cross-field checks to add to.
 */
export function resolveKnownOptions<S extends OptionTable>(
  table: S,
  prefix: string,
  env: NodeJS.ProcessEnv,
  flags?: ReadonlyMap<string, string>,
): { readonly values: OptionValues<S>; readonly problems: string[] } {
  const problems = unknownVariableProblems(env, prefix, table);
  try {
    return { values: resolveOptions(table, env, flags), problems };
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError([...problems, ...err.problems]);
    throw err;
  }
}

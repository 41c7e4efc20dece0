/**
 * Where a program's time goes, from a V8 .cpuprofile (`node --cpu-prof`; the benchmarks write them with
 * BENCH_PROFILE_DIR=dir): the busy time (idle excluded), the top functions by self time, self time by
 * package or module (protobufjs, grpc-js, node's http2, fs, our files, GC, ...), and our functions by
 * inclusive time (themselves and what they call).
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile>... [--top 25] [--callers functionName]
 *
 * --callers: who calls `functionName` (the chain of the nearest named frames above it), by the time
 * spent in it and below it on that chain, e.g. which code path pays for `_copyActual` or `stat`.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Package, node module or our file a frame belongs to. */
export function category(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)' || functionName === '(idle)' || functionName === '(program)') return functionName;
    return `native: ${functionName || '(anonymous)'}`;
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg !== null) return pkg[1] as string;
  const core = /^node:(?:internal\/)?([a-z_0-9]+)/.exec(url);
  if (core !== null) return `node:${core[1] as string}`;
  const ours = /\/dist\/((?:src|cmd|bench)\/.*)$/.exec(url);
  if (ours !== null) return ours[1] as string;
  return url;
}

function location(frame: CallFrame): string {
  const cat = category(frame);
  return frame.url === '' ? cat : `${cat}:${frame.lineNumber + 1}`;
}

interface Summary {
  readonly file: string;
  readonly totalMs: number;
  readonly idleMs: number;
  readonly self: ReadonlyMap<string, number>;
  readonly byCategory: ReadonlyMap<string, number>;
  readonly inclusiveOurs: ReadonlyMap<string, number>;
}

function add(map: Map<string, number>, key: string, ms: number): void {
  map.set(key, (map.get(key) ?? 0) + ms);
}

export function summarise(file: string): Summary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const self = new Map<string, number>();
  const byCategory = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  for (const [id, ms] of selfMs) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    totalMs += ms;
    if (frame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    add(self, `${frame.functionName || '(anonymous)'} ${location(frame)}`, ms);
    add(byCategory, category(frame), ms);
  }
  // Inclusive time of our functions: each node's subtree, counted once per function on a path.
  const inclusiveOurs = new Map<string, number>();
  const walk = (id: number, onPath: ReadonlySet<string>): number => {
    const node = byId.get(id) as ProfileNode;
    const frame = node.callFrame;
    const key = `${frame.functionName || '(anonymous)'} ${location(frame)}`;
    const ours = /^(src|cmd)\//.test(category(frame)) && !onPath.has(key);
    const path = ours ? new Set([...onPath, key]) : onPath;
    let total = selfMs.get(id) ?? 0;
    for (const child of node.children ?? []) total += walk(child, path);
    if (ours) add(inclusiveOurs, key, total);
    return total;
  };
  const root = profile.nodes[0];
  if (root !== undefined) walk(root.id, new Set());
  return { file, totalMs, idleMs, self, byCategory, inclusiveOurs };
}

/** Call chains (up to `depth` frames) leading to `name`, by the time spent in and below it. */
export function callers(file: string, name: string, depth = 4): Map<string, number> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    let id: number | undefined = profile.samples[i] as number;
    // The innermost frame named `name` on this sample's stack.
    while (id !== undefined && (byId.get(id) as ProfileNode).callFrame.functionName !== name) id = parent.get(id);
    if (id === undefined) continue;
    const chain: string[] = [];
    for (let p = parent.get(id); p !== undefined && chain.length < depth; p = parent.get(p)) {
      const frame = (byId.get(p) as ProfileNode).callFrame;
      if (frame.functionName !== '') chain.push(`${frame.functionName} ${location(frame)}`);
    }
    add(out, chain.join(' ← '), (profile.timeDeltas[i] ?? 0) / 1000);
  }
  return out;
}

function top(map: ReadonlyMap<string, number>, n: number): Array<[string, number]> {
  return [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
}

export function formatSummary(s: Summary, n: number): string {
  const busy = s.totalMs - s.idleMs;
  const pct = (ms: number): string => `${((100 * ms) / busy).toFixed(1)}%`;
  const out: string[] = [];
  out.push(`## ${basename(s.file)}: ${(busy / 1000).toFixed(2)} s busy of ${(s.totalMs / 1000).toFixed(2)} s sampled`);
  out.push('\nself time by package / module:');
  for (const [k, ms] of top(s.byCategory, n)) out.push(`  ${pct(ms).padStart(6)} ${ms.toFixed(0).padStart(6)} ms  ${k}`);
  out.push('\ntop functions by self time:');
  for (const [k, ms] of top(s.self, n)) out.push(`  ${pct(ms).padStart(6)} ${ms.toFixed(0).padStart(6)} ms  ${k}`);
  out.push('\nour functions by inclusive time (with what they call):');
  for (const [k, ms] of top(s.inclusiveOurs, n)) out.push(`  ${pct(ms).padStart(6)} ${ms.toFixed(0).padStart(6)} ms  ${k}`);
  return out.join('\n');
}

if (process.argv[1] !== undefined && basename(process.argv[1]) === 'profile-summary.js') {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, callers: { type: 'string' } } });
  if (positionals.length === 0) {
    console.error('usage: node dist/bench/profile-summary.js <file.cpuprofile>... [--top 25]');
    process.exit(2);
  }
  for (const file of positionals) {
    if (values.callers === undefined) {
      console.log(`${formatSummary(summarise(file), Number(values.top))}\n`);
      continue;
    }
    console.log(`## ${basename(file)}: callers of ${values.callers}`);
    for (const [chain, ms] of top(callers(file, values.callers), Number(values.top))) console.log(`  ${ms.toFixed(0).padStart(6)} ms  ${chain}`);
  }
}

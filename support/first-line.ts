import { closeSync, openSync, readSync } from 'node:fs';

/**
 * How a program's own first line starts it (the npm bin and the image run it through that line):
 * `#!/usr/bin/env -S [NAME=VALUE ...] node [options]` gives environment variables and node options,
 * `#!/usr/bin/env node` neither. The benchmarks start the programs with `node script` and the build
 * makes each program's code cache (support/bundle-programs.ts), so both pass the same, and run the
 * programs as they run. (The collector's line sets MALLOC_ARENA_MAX and GC options: see
 * cmd/collector/main.ts.)
 */
export function shebangLaunch(script: string): { env: Record<string, string>; nodeArgs: string[] } {
  const fd = openSync(script, 'r');
  try {
    const head = Buffer.alloc(512);
    const n = readSync(fd, head, 0, head.length, 0);
    const first = head.toString('utf8', 0, n).split('\n', 1)[0] ?? '';
    const m = /^#!\/usr\/bin\/env -S\s+(.*)$/.exec(first.trim());
    const env: Record<string, string> = {};
    if (m === null) return { env, nodeArgs: [] };
    const words = (m[1] ?? '').trim().split(/\s+/);
    let i = 0;
    for (; i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i] as string); i++) {
      const w = words[i] as string;
      env[w.slice(0, w.indexOf('='))] = w.slice(w.indexOf('=') + 1);
    }
    if (words[i] !== 'node') return { env: {}, nodeArgs: [] };
    return { env, nodeArgs: words.slice(i + 1) };
  } finally {
    closeSync(fd);
  }
}

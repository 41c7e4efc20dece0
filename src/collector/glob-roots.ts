import { dirname, relative, sep } from 'node:path';
import picomatch from 'picomatch';

/**
 * Which directories can hold files a glob matches: below the glob's static base, down to as many
 * levels as the glob has directory parts (`/logs/*.log`: /logs only; `/logs/*\/app.log`: one level
 * below; `**`: any depth). Only those directories are watched. Pure.
 */
export interface GlobRoot {
  readonly base: string;
  /** Directory levels below base that can hold matches (Infinity with `**`). */
  readonly maxDepth: number;
}

/** `globs` are absolute. */
export function globRoots(globs: readonly string[]): GlobRoot[] {
  return globs.map((g) => {
    const scan = picomatch.scan(g);
    // A plain path (no magic): its directory.
    if (!scan.isGlob) return { base: dirname(g), maxDepth: 0 };
    const base = scan.base === '' ? '/' : scan.base;
    const maxDepth = scan.glob.includes('**') ? Number.POSITIVE_INFINITY : scan.glob.split('/').length - 1;
    return { base, maxDepth };
  });
}

/** Directory levels of `dir` below `base`: 0 for base itself, -1 when not under it. */
export function depthBelow(base: string, dir: string): number {
  if (dir === base) return 0;
  const rel = relative(base, dir);
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return -1;
  return rel.split(sep).length;
}

/** Can `dir` hold a match of some root's glob? */
export function dirWanted(roots: readonly GlobRoot[], dir: string): boolean {
  return roots.some((r) => {
    const d = depthBelow(r.base, dir);
    return d >= 0 && d <= r.maxDepth;
  });
}

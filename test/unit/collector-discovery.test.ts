import { describe, expect, it } from 'vitest';
import { depthBelow, dirWanted, globRoots } from '../../src/collector/glob-roots.js';
import { missingInterest, resolveLink } from '../../src/collector/link-interests.js';
import type { LinkFs, PathKind } from '../../src/collector/link-interests.js';

/** An in-memory file system: path → kind, plus link targets. */
function memFs(entries: Record<string, PathKind | { link: string }>): LinkFs {
  return {
    kind: (p) => {
      const e = entries[p];
      if (e === undefined) return undefined;
      return typeof e === 'string' ? e : 'link';
    },
    readlink: (p) => {
      const e = entries[p];
      if (e === undefined || typeof e === 'string') throw new Error(`EINVAL ${p}`);
      return e.link;
    },
  };
}

describe('resolveLink (where a symlink will start to resolve)', () => {
  it('a dangling link: watch the target directory for the target name', () => {
    const fs = memFs({ '/': 'dir', '/logs': 'dir', '/logs/app.log': { link: '../data/app.log' }, '/data': 'dir' });
    expect(resolveLink('/logs/app.log', fs)).toEqual({ isLink: true, resolved: false, interests: [{ dir: '/data', name: 'app.log' }] });
  });

  it('a resolving link still watches its target (rotation replaces it); a plain file needs nothing', () => {
    const fs = memFs({ '/': 'dir', '/logs': 'dir', '/logs/app.log': { link: '/data/app.log' }, '/data': 'dir', '/data/app.log': 'file', '/logs/b.log': 'file' });
    expect(resolveLink('/logs/app.log', fs)).toEqual({ isLink: true, resolved: true, interests: [{ dir: '/data', name: 'app.log' }] });
    expect(resolveLink('/logs/b.log', fs)).toEqual({ isLink: false, resolved: true, interests: [] });
  });

  it('a target whose directories do not exist yet: the nearest existing ancestor, for the next name', () => {
    const fs = memFs({ '/': 'dir', '/logs': 'dir', '/logs/app.log': { link: '/srv/app/current/app.log' }, '/srv': 'dir' });
    expect(resolveLink('/logs/app.log', fs).interests).toEqual([
      { dir: '/srv/app/current', name: 'app.log' },
      { dir: '/srv', name: 'app' },
    ]);
    expect(missingInterest('/nothing/here', memFs({ '/': 'dir' }))).toEqual({ dir: '/', name: 'nothing' });
  });

  it('chains: every hop is watched; a loop ends without resolving', () => {
    const fs = memFs({
      '/': 'dir',
      '/l': 'dir',
      '/l/a.log': { link: 'hop1' },
      '/l/hop1': { link: '/m/hop2' },
      '/m': 'dir',
      '/m/hop2': { link: '/n/final.log' },
      '/n': 'dir',
      '/n/final.log': 'file',
      '/l/loop.log': { link: 'loop.log' },
    });
    const r = resolveLink('/l/a.log', fs);
    expect(r.resolved).toBe(true);
    expect(r.interests).toEqual([
      { dir: '/l', name: 'hop1' },
      { dir: '/m', name: 'hop2' },
      { dir: '/n', name: 'final.log' },
    ]);
    expect(resolveLink('/l/loop.log', fs)).toEqual({ isLink: true, resolved: false, interests: [{ dir: '/l', name: 'loop.log' }] });
  });

  it('a path that does not exist is not a link and waits for nothing (the glob directory watch covers it)', () => {
    expect(resolveLink('/l/none.log', memFs({ '/': 'dir', '/l': 'dir' }))).toEqual({ isLink: false, resolved: false, interests: [] });
  });
});

describe('globRoots (which directories can hold matches)', () => {
  it('limits the depth below the base by the glob, unlimited with **', () => {
    const roots = globRoots(['/var/log/app/*.log', '/srv/*/logs/*.log', '/data/**/*.log', '/etc/plain.log']);
    expect(roots).toEqual([
      { base: '/var/log/app', maxDepth: 0 },
      { base: '/srv', maxDepth: 2 },
      { base: '/data', maxDepth: Number.POSITIVE_INFINITY },
      { base: '/etc', maxDepth: 0 },
    ]);
    expect(dirWanted(roots, '/var/log/app')).toBe(true);
    expect(dirWanted(roots, '/var/log/app/old')).toBe(false);
    expect(dirWanted(roots, '/var/log')).toBe(false);
    expect(dirWanted(roots, '/srv/a/logs')).toBe(true);
    expect(dirWanted(roots, '/srv/a/logs/deeper')).toBe(false);
    expect(dirWanted(roots, '/data/x/y/z')).toBe(true);
    expect(dirWanted(roots, '/database')).toBe(false);
  });

  it('depthBelow: 0 for the base, -1 outside it', () => {
    expect(depthBelow('/a', '/a')).toBe(0);
    expect(depthBelow('/a', '/a/b/c')).toBe(2);
    expect(depthBelow('/a', '/ab')).toBe(-1);
    expect(depthBelow('/a/b', '/a')).toBe(-1);
  });
});

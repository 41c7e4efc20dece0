import { basename, dirname, resolve } from 'node:path';

/**
 * Where to look for the change that makes a path name a file: for a symlink, each hop of its chain
 * (the directory that holds the hop, and the hop's name in it); for a hop (or a directory) that does
 * not exist yet, its nearest existing ancestor and the name of the next missing component. A
 * directory watcher on those directories sees the target appear (or be replaced) the moment it
 * happens, instead of the next rescan. Pure: the file system is passed in.
 */
export type PathKind = 'file' | 'dir' | 'link' | 'other';

export interface LinkFs {
  /** lstat: the kind of the path itself, undefined when it does not exist. */
  kind(path: string): PathKind | undefined;
  readlink(path: string): string;
}

export interface Interest {
  readonly dir: string;
  readonly name: string;
}

export interface Resolution {
  readonly interests: readonly Interest[];
  /** The chain ends at a regular file. */
  readonly resolved: boolean;
  /** The path itself is a symlink. */
  readonly isLink: boolean;
}

/** Linux gives up after 40 hops (ELOOP); so do we. */
const MAX_HOPS = 40;

/** Where the missing `path` would appear: its nearest existing ancestor and the next name below it. */
export function missingInterest(path: string, fs: LinkFs): Interest {
  let child = path;
  let dir = dirname(path);
  while (dir !== dirname(dir) && fs.kind(dir) === undefined) {
    child = dir;
    dir = dirname(dir);
  }
  return { dir, name: basename(child) };
}

export function resolveLink(path: string, fs: LinkFs): Resolution {
  const interests: Interest[] = [];
  const seen = new Set<string>();
  const add = (i: Interest): void => {
    const key = `${i.dir}\0${i.name}`;
    if (seen.has(key)) return;
    seen.add(key);
    interests.push(i);
  };
  let p = path;
  let isLink = false;
  for (let hop = 0; hop <= MAX_HOPS; hop++) {
    let kind: PathKind | undefined;
    try {
      kind = fs.kind(p);
    } catch {
      kind = undefined;
    }
    if (kind === undefined) {
      // The link's own path vanishing is the glob watcher's business; a missing hop is ours.
      if (hop > 0) add(missingInterest(p, fs));
      return { interests, resolved: false, isLink };
    }
    if (kind !== 'link') return { interests, resolved: kind === 'file', isLink };
    if (hop === 0) isLink = true;
    let target: string;
    try {
      target = resolve(dirname(p), fs.readlink(p));
    } catch {
      return { interests, resolved: false, isLink };
    }
    // Watched even while it exists: a rotation replaces the target, and the link follows.
    add({ dir: dirname(target), name: basename(target) });
    p = target;
  }
  return { interests, resolved: false, isLink };
}

import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';

/**
 * How a bundled program (dist/cmd/<program>/main.js, written by support/bundle-programs.ts) starts: it
 * compiles its CommonJS bundle with V8's code cache, made by `npm run build` from a run of the same
 * bundle, so a start neither parses the 1.5-2 MB of JavaScript nor compiles again the functions that
 * ran while the program loaded (bench/README.md, "Start-up with a code cache"). Node 20 has no compile
 * cache of its own (`module.enableCompileCache` is Node 22) and none at all for ES modules, hence the
 * CommonJS bundle and this file.
 *
 * V8 takes a cache only when it was made by the same V8 with the same flags; otherwise it compiles as
 * usual (`rejected`: slower, same behaviour). V8 compares the source by its length only, so the file
 * carries a SHA-1 of the bundle and of the cache: one made for another build, or damaged, is not handed
 * to V8 at all (`stale`).
 */
export type CodeCacheState = 'accepted' | 'rejected' | 'stale' | 'absent';

export interface BundleLaunchOptions {
  /** The CommonJS bundle (no `#!` line). */
  readonly bundle: string;
  /** Its code cache (written by `writeCodeCacheAtExit`); none when the cache is being made. */
  readonly cache?: string;
  /**
   * V8 flags the program sets for itself at start (e.g. src/collector/young-generation.ts). They are
   * part of what V8 checks a cache against, so they are set before compiling, here and when the cache
   * is made.
   */
  readonly v8Flags?: readonly string[];
}

export interface CompiledBundle {
  readonly codeCache: CodeCacheState;
  /** Runs the bundle (the program's main). */
  run(): void;
  /** The cache of what has been compiled so far, in this file's format. */
  cacheFile(): Buffer;
}

const DIGEST_BYTES = 20;
/** Line numbers of the bundle stay as they are: the wrapper opens on its first line (as node's own). */
const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname) { ';
const WRAPPER_TAIL = '\n});';

function digest(source: string, payload: Buffer): Buffer {
  return createHash('sha1').update(source).update(payload).digest();
}

/** The cache file: SHA-1 over (bundle source, V8's cache), then V8's cache. */
export function encodeCacheFile(source: string, payload: Buffer): Buffer {
  return Buffer.concat([digest(source, payload), payload]);
}

/** V8's cache from a cache file made for `source`, or undefined when it was made for another or is damaged. */
export function decodeCacheFile(source: string, file: Buffer): Buffer | undefined {
  if (file.length <= DIGEST_BYTES) return undefined;
  const payload = file.subarray(DIGEST_BYTES);
  return digest(source, payload).equals(file.subarray(0, DIGEST_BYTES)) ? payload : undefined;
}

export function compileBundle(options: BundleLaunchOptions): CompiledBundle {
  for (const flag of options.v8Flags ?? []) setFlagsFromString(flag);
  const source = readFileSync(options.bundle, 'utf8');
  let file: Buffer | undefined;
  try {
    file = options.cache === undefined ? undefined : readFileSync(options.cache);
  } catch {
    file = undefined;
  }
  const cachedData = file === undefined ? undefined : decodeCacheFile(source, file);
  const script = new Script(WRAPPER_HEAD + source + WRAPPER_TAIL, { filename: options.bundle, cachedData });
  let codeCache: CodeCacheState;
  if (file === undefined) codeCache = 'absent';
  else if (cachedData === undefined) codeCache = 'stale';
  else codeCache = script.cachedDataRejected === true ? 'rejected' : 'accepted';
  return {
    codeCache,
    run() {
      const main = script.runInThisContext() as (...args: unknown[]) => void;
      const module = { exports: {} };
      main.call(module.exports, module.exports, createRequire(options.bundle), module, options.bundle, dirname(options.bundle));
    },
    // The bundle is read again rather than kept: a 1-1.5 MB string held for a build-time step is
    // that much of the collector's resident memory for its whole life (issue #12's 64 MiB).
    cacheFile: () => encodeCacheFile(readFileSync(options.bundle, 'utf8'), script.createCachedData()),
  };
}

/**
 * `npm run build`: writes the cache when the process exits, after the run compiled what it needed
 * (written beside, then renamed: a build stopped half way leaves no half a cache).
 */
export function writeCodeCacheAtExit(compiled: CompiledBundle, cache: string): void {
  process.once('exit', () => {
    writeFileSync(`${cache}.tmp`, compiled.cacheFile());
    renameSync(`${cache}.tmp`, cache);
  });
}

import * as childProcess from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as net from 'node:net';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from './seeded-random.js';

/**
 * Setup file of the `unit` vitest project (vitest.config.ts): unit tests are pure, so this makes the
 * ways out of a pure test throw, in the test and in the code under test alike:
 *   - sockets: connecting or listening (TCP, TLS, HTTP, gRPC all go through net.Socket/net.Server),
 *     and binding or sending UDP;
 *   - child processes;
 *   - files: every fs call that writes (a temp dir too), and every read of a path outside what the
 *     tests load as code and fixtures (src/, test/ with test/fixtures/, cmd/, support/, api/,
 *     node_modules/): reading README.md or deploy/ fails, module loading and the .proto still work;
 *   - real sleeps: a real timer with a delay (use ManualClock; setTimeout(fn, 0) to yield stays allowed).
 * And Math.random is seeded (TEST_SEED), so code under test that falls back to it repeats too.
 * A test that needs any of them belongs in test/integration.
 */
const ROOT = resolve(join(fileURLToPath(import.meta.url), '..', '..', '..'));
const CODE_ROOTS = ['src', 'test', 'cmd', 'support', 'api', 'node_modules'].map((d) => join(ROOT, d) + sep);

export class ImpureUnitTestError extends Error {
  constructor(what: string) {
    super(`unit tests are pure: ${what}. A test that needs it belongs in test/integration.`);
    this.name = 'ImpureUnitTestError';
  }
}

function isCodePath(path: unknown): boolean {
  let p: string;
  if (typeof path === 'string') p = path;
  else if (path instanceof URL) p = fileURLToPath(path);
  else if (Buffer.isBuffer(path)) p = path.toString();
  else return true; // a file descriptor: its open was checked
  const abs = isAbsolute(p) ? p : resolve(p);
  if (abs === ROOT) return true;
  // A code root itself ("src") or anything below it.
  return CODE_ROOTS.some((r) => (abs + sep).startsWith(r)) && !relative(ROOT, abs).startsWith('..');
}

type AnyFn = (...args: unknown[]) => unknown;

const READS = new Set(['access', 'createReadStream', 'exists', 'lstat', 'opendir', 'readdir', 'readFile', 'readlink', 'realpath', 'stat', 'statfs', 'watch', 'watchFile']);

/** `open(path, flags)` only reads with no flags, 'r', 'rs' or O_RDONLY (0). */
function opensForReading(flags: unknown): boolean {
  return flags === undefined || flags === 'r' || flags === 'rs' || flags === fs.constants.O_RDONLY;
}

function guardPaths(target: Record<string, unknown>, names: readonly string[], label: string, returnsPromise = false): void {
  for (const name of names) {
    const original = target[name];
    if (typeof original !== 'function') continue;
    const base = name.replace(/Sync$/, '');
    const guard = (fn: AnyFn): AnyFn =>
      function (this: unknown, ...args: unknown[]): unknown {
        const reads = READS.has(base) || (base === 'open' && opensForReading(args[1]));
        const refusal = !reads ? 'writes to the file system' : isCodePath(args[0]) ? undefined : 'reads a file that is not code or a test fixture';
        if (refusal === undefined) return fn.apply(this, args);
        const err = new ImpureUnitTestError(`${label}.${name}(${String(args[0])}) ${refusal}`);
        if (returnsPromise) return Promise.reject(err);
        throw err;
      };
    const guarded = guard(original as AnyFn) as AnyFn & Record<string, unknown>;
    // Keep what hangs off the function (fs.realpathSync.native), guarded alike.
    for (const [key, value] of Object.entries(original)) guarded[key] = typeof value === 'function' ? guard(value as AnyFn) : value;
    target[name] = guarded;
  }
}

function forbid(target: Record<string, unknown>, names: readonly string[], what: (name: string) => string): void {
  for (const name of names) {
    if (typeof target[name] !== 'function') continue;
    target[name] = () => {
      throw new ImpureUnitTestError(what(name));
    };
  }
}

const FS_PATH_CALLS = [
  'access', 'appendFile', 'chmod', 'chown', 'copyFile', 'cp', 'createReadStream', 'createWriteStream', 'exists', 'lstat',
  'mkdir', 'mkdtemp', 'open', 'opendir', 'readdir', 'readFile', 'readlink', 'realpath', 'rename', 'rm', 'rmdir', 'stat',
  'statfs', 'symlink', 'link', 'truncate', 'unlink', 'utimes', 'watch', 'watchFile', 'writeFile',
];
const fsModule = (fs as unknown as { default: Record<string, unknown> }).default;
guardPaths(fsModule, [...FS_PATH_CALLS, ...FS_PATH_CALLS.map((n) => `${n}Sync`)], 'fs');
guardPaths(fsModule.promises as Record<string, unknown>, FS_PATH_CALLS, 'fs.promises', true);

const netSocket = net.Socket.prototype as unknown as Record<string, unknown>;
forbid(netSocket, ['connect'], () => 'a socket connects');
forbid(net.Server.prototype as unknown as Record<string, unknown>, ['listen'], () => 'a server listens');
forbid(dgram.Socket.prototype as unknown as Record<string, unknown>, ['bind', 'send', 'connect'], (n) => `a UDP socket calls ${n}`);
const cpModule = (childProcess as unknown as { default: Record<string, unknown> }).default;
forbid(cpModule, ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'], (n) => `child_process.${n} starts a process`);
forbid(childProcess.ChildProcess.prototype as unknown as Record<string, unknown>, ['spawn'], () => 'a child process starts');
// Named ESM imports of the builtins (import { readFileSync } from 'node:fs') see the guarded functions too.
syncBuiltinESMExports();

const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = function (handler: unknown, ms?: number, ...args: unknown[]) {
  if (typeof ms === 'number' && ms > 0) throw new ImpureUnitTestError(`a real ${ms} ms timer (a sleep); use ManualClock`);
  return (realSetTimeout as unknown as AnyFn)(handler, ms, ...args);
} as typeof setTimeout;

Math.random = seededRandom();

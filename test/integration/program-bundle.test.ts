import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLE_EXTERNALS, BUNDLED_PROGRAMS, BUNDLE_FILE, CODE_CACHE_FILE, asciiOnly } from '../../support/bundle-programs.js';
import { shebangLaunch } from '../../support/first-line.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Each program's first line trades a little GC work for memory (cmd/<program>/main.ts, README "Running"). */
const FIRST_LINES: Record<string, string> = {
  collector: '#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --single-threaded-gc --v8-pool-size=1 --max-semi-space-size=1 --expose-gc',
  aggregator: '#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4',
};
const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
const scratch = mkdtempSync(join(tmpdir(), 'mc-bundle-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Preloaded (`node -r`): prints, as the process exits, every module the bundle itself required that is
 * not one of node's built-ins (its requires go through Module._load; those of the modules it loads are
 * theirs).
 */
const REQUIRE_RECORDER = `
const Module = require('node:module');
const seen = new Set();
const load = Module._load;
Module._load = function (request, parent, ...rest) {
  if (!Module.isBuiltin(request) && parent?.filename?.endsWith('${BUNDLE_FILE}')) seen.add(request);
  return load.call(this, request, parent, ...rest);
};
process.on('exit', () => process.stderr.write('required: ' + JSON.stringify([...seen].sort()) + '\\n'));
`;

/** Runs a built program through its first line's options and variables, as the bin does (plus `extraNodeArgs`). */
function runBuilt(program: string, args: string[], env: Record<string, string> = {}, extraNodeArgs: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const file = join(root, 'dist', 'cmd', program, 'main.js');
  const launch = shebangLaunch(file);
  const r = spawnSync(process.execPath, [...launch.nodeArgs, ...extraNodeArgs, file, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, ...launch.env, NODE_OPTIONS: '', ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Start-up cost is what a program loads before its first line (bench/README.md, "Start-up"): these check
 * the built programs (`npm run build`) stay one file that loads nothing at start but node's built-ins and
 * the native crc32, and that what running never needs is not compiled with them.
 */
describe('the bundled programs (dist/cmd/*/main.js)', () => {
  for (const program of BUNDLED_PROGRAMS) {
    it(`${program}: requires at start only node built-ins and the native addon; no protobufjs, no zod locales`, () => {
      expect(readFileSync(join(root, 'dist', 'cmd', program, 'main.js'), 'utf8').split('\n', 1)[0]).toBe(FIRST_LINES[program]);
      const recorder = join(scratch, 'recorder.cjs');
      writeFileSync(recorder, REQUIRE_RECORDER);
      const r = runBuilt(program, ['--version'], {}, ['-r', recorder]);
      expect(r.status).toBe(0);
      // fdir (under tinyglobby, the collector's globs) tries `require('picomatch')` as it loads, inside a
      // try, which a bundler cannot follow: the collector loads that one small package from node_modules.
      const expected = program === 'collector' ? ['@node-rs/crc32', 'picomatch'] : ['@node-rs/crc32'];
      expect(r.stderr.trim().split('\n')).toEqual([`required: ${JSON.stringify(expected)}`]);
      expect(BUNDLE_EXTERNALS).toContain('@node-rs/crc32');
      const code = readFileSync(join(root, 'dist', 'cmd', program, BUNDLE_FILE), 'utf8');
      // Nothing else the bundle could require is a package of ours to load from node_modules, except
      // the externals and two optional ones libraries try inside try/catch (picomatch, encoding).
      const requested = [...code.matchAll(/\b(?:__)?require\d*\("([^"]+)"\)/g)].map((m) => m[1] as string);
      const outside = [...new Set(requested.filter((s) => !builtins.has(s)))].sort();
      expect(outside.filter((s) => !BUNDLE_EXTERNALS.includes(s) && s !== 'picomatch' && s !== 'encoding')).toEqual([]);
      // No import() is left: a script compiled by node:vm (src/util/bundle-launch.ts) has no loader for
      // it, so one would fail only when that path runs.
      expect(code).not.toMatch(/\bimport\(/);
      // The .proto runtimes: neither program parses a .proto any more (ingest-codec.ts, health-service.ts).
      expect(code).not.toContain('node_modules/protobufjs/');
      expect(code).not.toContain('node_modules/@grpc/proto-loader/');
      // zod as a namespace import keeps only the English messages.
      expect(code).toContain('node_modules/zod/v4/locales/en.js');
      expect(code).not.toContain('node_modules/zod/v4/locales/fr.js');
      // All ASCII, so V8 keeps the source (in the heap while the program runs) at one byte a character.
      expect(code.match(/[\u0080-\uffff].{0,40}/)?.[0]).toBeUndefined();
    });

    it(`${program}: starts with its code cache through its first line; without that line's options V8 refuses it and the program still runs`, () => {
      expect(statSync(join(root, 'dist', 'cmd', program, CODE_CACHE_FILE)).size).toBeGreaterThan(100_000);
      const withLine = runBuilt(program, ['--version'], { MEGA_CODE_CACHE_REPORT: '1' });
      expect(withLine.status).toBe(0);
      expect(withLine.stderr).toBe('code cache: accepted\n');
      // `node dist/cmd/<program>/main.js` (no --max-semi-space-size, ...): other V8 flags.
      const bare = spawnSync(process.execPath, [join(root, 'dist', 'cmd', program, 'main.js'), '--version'], {
        encoding: 'utf8',
        timeout: 20_000,
        env: { ...process.env, NODE_OPTIONS: '', MEGA_CODE_CACHE_REPORT: '1' },
      });
      expect(bare.status).toBe(0);
      expect(bare.stderr).toBe('code cache: rejected\n');
      expect(bare.stdout).toBe(withLine.stdout);
    });
  }

  for (const program of ['aggregator', 'collector']) {
    it(`${program}: the built file is executable and starts through its own first line (as the bin and the image run it)`, () => {
      const file = join(root, 'dist', 'cmd', program, 'main.js');
      expect(statSync(file).mode & 0o111).toBe(0o111);
      const r = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 20_000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/\d+\.\d+\.\d+/);
    });
  }

  it('the collector requires grpc-health-check only inside validate (a dynamic import, made a require by the bundler)', () => {
    const code = readFileSync(join(root, 'dist', 'cmd', 'collector', BUNDLE_FILE), 'utf8');
    const uses = [...code.matchAll(/.{0,60}require\("grpc-health-check"\).{0,5}/g)].map((m) => m[0]);
    expect(uses).toHaveLength(1);
    expect(uses[0]).toMatch(/await Promise\.resolve\(\)\.then\(\(\) => __toESM\(require\("grpc-health-check"\)/);
  });

  it('asciiOnly escapes what esbuild leaves in comments and regular expressions, meaning the same', () => {
    const source = "// a → b\nexport const re = /[a-zµμ]/i; export const s = `x—y`; export const emoji = '😀';";
    const ascii = asciiOnly(source);
    expect(ascii).not.toMatch(/[\u0080-\uffff]/);
    const run = (code: string): unknown[] => {
      const exports: Record<string, unknown> = {};
      new Function('exports', code.replace(/export const (\w+) =/g, 'exports.$1 =')) (exports);
      return [(exports.re as RegExp).test('µ'), (exports.re as RegExp).test('5'), exports.s, exports.emoji];
    };
    expect(run(ascii)).toEqual(run(source));
    expect(run(ascii)).toEqual([true, false, 'x—y', '😀']);
  });
});

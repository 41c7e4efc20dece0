import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BUNDLE_EXTERNALS, BUNDLED_PROGRAMS, asciiOnly } from '../../support/bundle-programs.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Each program's first line trades a little GC work for memory (cmd/<program>/main.ts, README "Running"). */
const FIRST_LINES: Record<string, string> = {
  collector: '#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --single-threaded-gc --v8-pool-size=1 --max-semi-space-size=1 --expose-gc',
  aggregator: '#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=4',
};
const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/**
 * Start-up cost is what a program loads before its first line (bench/README.md, "Start-up"): these check
 * the built programs (`npm run build`) stay one file that loads nothing at start but node's built-ins and
 * the native crc32, and that what running never needs is not compiled with them.
 */
describe('the bundled programs (dist/cmd/*/main.js)', () => {
  for (const program of BUNDLED_PROGRAMS) {
    it(`${program}: imports at start only node built-ins and the native addon; no protobufjs, no zod locales`, () => {
      const code = readFileSync(join(root, 'dist', 'cmd', program, 'main.js'), 'utf8');
      expect(code.split('\n', 1)[0]).toBe(FIRST_LINES[program]);
      const staticImports = [...code.matchAll(/^import\s+(?:[^'"]*?\s+from\s+)?["']([^"']+)["'];?$/gm)].map((m) => m[1] as string);
      expect(staticImports.length).toBeGreaterThan(0);
      const notBuiltin = [...new Set(staticImports.filter((s) => !builtins.has(s)))];
      expect(notBuiltin).toEqual(['@node-rs/crc32']);
      expect(BUNDLE_EXTERNALS).toContain('@node-rs/crc32');
      // The .proto runtimes: neither program parses a .proto any more (ingest-codec.ts, health-service.ts).
      expect(code).not.toContain('node_modules/protobufjs/');
      expect(code).not.toContain('node_modules/@grpc/proto-loader/');
      // zod as a namespace import keeps only the English messages.
      expect(code).toContain('node_modules/zod/v4/locales/en.js');
      expect(code).not.toContain('node_modules/zod/v4/locales/fr.js');
      // All ASCII, so V8 keeps the source (in the heap while the program runs) at one byte a character.
      expect(code.match(/[\u0080-\uffff].{0,40}/)?.[0]).toBeUndefined();
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

  it('the collector imports grpc-health-check only inside validate (a dynamic import)', () => {
    const code = readFileSync(join(root, 'dist', 'cmd', 'collector', 'main.js'), 'utf8');
    expect(code).toMatch(/await import\("grpc-health-check"\)/);
    expect(code).not.toMatch(/^import .*"grpc-health-check"/m);
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

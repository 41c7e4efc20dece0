/**
 * `npm run build`, second step: each long-running program (the aggregator, the collector) becomes one
 * CommonJS file with its dependencies (dist/cmd/<program>/bundle.cjs), V8's code cache for it
 * (bundle.cjs.cache, made here by a `--version` run of the program under its own first line) and a
 * small launcher written over tsc's dist/cmd/<program>/main.js, which keeps the program's first line
 * and starts the bundle with that cache (src/util/bundle-launch.ts). So `node
 * dist/cmd/<program>/main.js`, the npm bins, the image and every test and benchmark that spawns them run
 * the same code. Loading ~400 modules one by one (resolve, stat, read, compile, link) was most of each
 * program's ~0.9 s of start-up CPU; one file cut ~0.3 s of it, and the code cache ~0.1 s more
 * (bench/README.md, "Start-up" and "Start-up with a code cache"). CommonJS because Node 20 caches code
 * only for scripts, not for ES modules.
 *
 * The entry is the TypeScript source, not tsc's output, so a bundle never wraps a stale build. Left
 * outside (loaded from node_modules as before):
 * - @node-rs/crc32: a native addon;
 * - grpc-health-check: reads its .proto beside itself at import (only `mega-collector validate` loads it);
 * - @grpc/proto-loader (with protobufjs): grpc-js requires it only to serve channelz, which we never enable;
 *   outside, its ~0.4 MB are not compiled at every start.
 * grpc-compression-guard.ts patches an internal module of @grpc/grpc-js: it imports that module by its
 * path, so the bundle holds one copy that both the guard and the server use (aggregator-hostile.test.ts
 * sends a real aggregator the message the guard refuses).
 * The other commands (cmd/demo, cmd/healthcheck, cmd/aeron-receiver) stay tsc's output.
 */
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { YOUNG_GENERATION_FLAGS } from '../src/collector/young-generation.js';
import { shebangLaunch } from './first-line.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const BUNDLED_PROGRAMS = ['aggregator', 'collector'] as const;
export type BundledProgram = (typeof BUNDLED_PROGRAMS)[number];

export const BUNDLE_EXTERNALS = ['@node-rs/crc32', 'grpc-health-check', '@grpc/proto-loader'];

/** The files of a built program, under dist/cmd/<program>/. */
export const BUNDLE_FILE = 'bundle.cjs';
export const CODE_CACHE_FILE = 'bundle.cjs.cache';

/** V8 flags each program sets for itself as it starts (they must be set before its bundle is compiled). */
export const PROGRAM_V8_FLAGS: Record<BundledProgram, readonly string[]> = {
  aggregator: [],
  collector: YOUNG_GENERATION_FLAGS,
};

// ES modules' `import.meta.url` (src/util/package-info.ts) in a CommonJS bundle: the bundle's own URL.
const IMPORT_META_URL_SHIM = "const __bundleImportMetaUrl = require('node:url').pathToFileURL(__filename).href;";

/** dist/cmd/<program>/main.js: the program's first line, then the launcher. */
export function launcherSource(firstLine: string, v8Flags: readonly string[]): string {
  return [
    firstLine,
    '// Written by `npm run build` (support/bundle-programs.ts): starts bundle.cjs with its code cache.',
    "import { fileURLToPath } from 'node:url';",
    "import { compileBundle } from '../../src/util/bundle-launch.js';",
    `const program = compileBundle({ bundle: fileURLToPath(new URL('./${BUNDLE_FILE}', import.meta.url)), cache: fileURLToPath(new URL('./${CODE_CACHE_FILE}', import.meta.url)), v8Flags: ${JSON.stringify(v8Flags)} });`,
    "if (process.env.MEGA_CODE_CACHE_REPORT === '1') process.stderr.write(`code cache: ${program.codeCache}\\n`);",
    'program.run();',
    '',
  ].join('\n');
}

/**
 * V8 keeps a script's source in the heap while it runs, one byte per character when all of it is
 * ASCII and two otherwise: one `→` in a comment made the collector's 1.4 MB bundle a 2.9 MB string.
 * esbuild escapes strings but leaves comments and regular expression literals as they are; a `\u`
 * escape means the same character in both (and in a template literal).
 */
export function asciiOnly(code: string): string {
  return code.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

async function bundle(program: BundledProgram): Promise<void> {
  const dir = join(root, 'dist', 'cmd', program);
  const entry = join(root, 'cmd', program, 'main.ts');
  const outfile = join(dir, BUNDLE_FILE);
  await build({
    entryPoints: [entry],
    outfile,
    allowOverwrite: true,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: BUNDLE_EXTERNALS,
    define: { 'import.meta.url': '__bundleImportMetaUrl' },
    banner: { js: IMPORT_META_URL_SHIM },
    // `import()` of an external becomes a require() in a promise: a script compiled by node:vm has no
    // loader for import().
    supported: { 'dynamic-import': false },
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  // The first line is the launcher's; in the bundle it becomes a comment (line numbers stay those of
  // the source map). ASCII, so V8 keeps the source at one byte a character.
  const code = asciiOnly(readFileSync(outfile, 'utf8').replace(/^#!/, '//'));
  writeFileSync(outfile, code);
  const firstLine = readFileSync(entry, 'utf8').split('\n', 1)[0] ?? '';
  const launcher = join(dir, 'main.js');
  writeFileSync(launcher, launcherSource(firstLine, PROGRAM_V8_FLAGS[program]));
  rmSync(join(dir, 'main.js.map'), { force: true });
  // Executable, so `dist/cmd/<program>/main.js` runs through its first line as the bin does.
  chmodSync(launcher, 0o755);
  writeCodeCache(launcher, outfile, join(dir, CODE_CACHE_FILE), PROGRAM_V8_FLAGS[program]);
}

/**
 * Runs the program once (`--version`) under its first line's options and variables, as the bin starts
 * it, so the cache holds what loading it compiles and V8 takes it at the next start. NODE_OPTIONS is
 * left out: the programs run without it.
 */
function writeCodeCache(launcher: string, bundleFile: string, cache: string, v8Flags: readonly string[]): void {
  const { env, nodeArgs } = shebangLaunch(launcher);
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.NODE_OPTIONS;
  const writer = join(root, 'dist', 'support', 'write-code-cache.js');
  const r = spawnSync(process.execPath, [...nodeArgs, writer, bundleFile, cache, ...v8Flags], { env: childEnv, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bundleFile}: making the code cache failed (exit ${r.status ?? r.signal}): ${r.stderr}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  Promise.all(BUNDLED_PROGRAMS.map(bundle)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

/**
 * `npm run build`, second step: each long-running program (the aggregator, the collector) becomes one
 * ESM file with its dependencies, written over tsc's dist/cmd/<program>/main.js, so `node
 * dist/cmd/<program>/main.js`, the npm bins, the image and every test and benchmark that spawns them run
 * the same file. Loading ~400 modules one by one (resolve, stat, read, compile, link) was most of each
 * program's ~0.9 s of start-up CPU; one file cuts ~0.3 s of it (bench/README.md, "Start-up").
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
import { build } from 'esbuild';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const BUNDLED_PROGRAMS = ['aggregator', 'collector'] as const;

export const BUNDLE_EXTERNALS = ['@node-rs/crc32', 'grpc-health-check', '@grpc/proto-loader'];

// Bundled CommonJS dependencies call require() for node's built-ins; an ESM file has none of its own.
const REQUIRE_SHIM = "import { createRequire as __bundleCreateRequire } from 'node:module';\nconst require = __bundleCreateRequire(import.meta.url);";

/**
 * V8 keeps a script's source in the heap while it runs, one byte per character when all of it is
 * ASCII and two otherwise: one `→` in a comment made the collector's 1.4 MB bundle a 2.9 MB string.
 * esbuild escapes strings but leaves comments and regular expression literals as they are; a `\u`
 * escape means the same character in both (and in a template literal).
 */
export function asciiOnly(code: string): string {
  return code.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

async function bundle(program: string): Promise<void> {
  const outfile = join(root, 'dist', 'cmd', program, 'main.js');
  await build({
    entryPoints: [join(root, 'cmd', program, 'main.ts')],
    outfile,
    allowOverwrite: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: BUNDLE_EXTERNALS,
    // The source keeps `#!/usr/bin/env node` (the bin); the shim goes right after it.
    banner: { js: REQUIRE_SHIM },
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  const code = readFileSync(outfile, 'utf8');
  const ascii = asciiOnly(code);
  if (ascii !== code) writeFileSync(outfile, ascii);
  // Executable, so `dist/cmd/<program>/main.js` runs through its first line as the bin does.
  chmodSync(outfile, 0o755);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  Promise.all(BUNDLED_PROGRAMS.map(bundle)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

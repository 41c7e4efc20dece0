import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const writer = join(root, 'dist', 'support', 'write-code-cache.js');
const launchModule = pathToFileURL(join(root, 'dist', 'src', 'util', 'bundle-launch.js')).href;
const dir = mkdtempSync(join(tmpdir(), 'mc-launch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bundle = join(dir, 'bundle.cjs');
const cache = join(dir, 'bundle.cjs.cache');
/** A program in the shape of ours: CommonJS, requires built-ins, reads its arguments, some functions run at load. */
const program = (word: string): string =>
  [
    "const { join } = require('node:path');",
    'function greet(args) { return args.map((a) => a.toUpperCase()).join(" "); }',
    `process.stdout.write(join('a', 'b') + ' ${word} ' + greet(process.argv.slice(2)) + ' ' + __filename.endsWith('bundle.cjs') + '\\n');`,
  ].join('\n');

/** Starts `bundle` as dist/cmd/<program>/main.js does, reporting the cache's state on stderr. */
function launch(nodeArgs: string[] = []): { status: number | null; stdout: string; stderr: string } {
  const code = `import { compileBundle } from ${JSON.stringify(launchModule)};
const p = compileBundle({ bundle: ${JSON.stringify(bundle)}, cache: ${JSON.stringify(cache)}, v8Flags: ['--semi-space-growth-factor=1'] });
process.stderr.write(p.codeCache);
p.run();`;
  const launcher = join(dir, 'main.mjs');
  writeFileSync(launcher, code);
  const r = spawnSync(process.execPath, [...nodeArgs, launcher, 'x', 'y'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, NODE_OPTIONS: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeCache(nodeArgs: string[] = []): void {
  const r = spawnSync(process.execPath, [...nodeArgs, writer, bundle, cache, '--semi-space-growth-factor=1'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, NODE_OPTIONS: '' } });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  // The writer ran the bundle as `<bundle> --version`.
  expect(r.stdout).toBe('a/b one --VERSION true\n');
}

describe('starting a bundle with its code cache (src/util/bundle-launch.ts, support/write-code-cache.ts)', () => {
  it('no cache: compiles as usual; a cache made under the same options is taken; under other V8 options V8 refuses it; the program runs the same each time', () => {
    writeFileSync(bundle, program('one'));
    rmSync(cache, { force: true });
    expect(launch()).toEqual({ status: 0, stdout: 'a/b one X Y true\n', stderr: 'absent' });
    writeCache(['--max-semi-space-size=1']);
    expect(launch(['--max-semi-space-size=1'])).toEqual({ status: 0, stdout: 'a/b one X Y true\n', stderr: 'accepted' });
    expect(launch(['--max-semi-space-size=2'])).toEqual({ status: 0, stdout: 'a/b one X Y true\n', stderr: 'rejected' });
  });

  it('a bundle changed after its cache was made (same length) or a damaged cache: not given to V8, and the new code runs', () => {
    writeFileSync(bundle, program('one'));
    writeCache();
    expect(launch()).toEqual({ status: 0, stdout: 'a/b one X Y true\n', stderr: 'accepted' });
    writeFileSync(bundle, program('two'));
    expect(launch()).toEqual({ status: 0, stdout: 'a/b two X Y true\n', stderr: 'stale' });
    writeFileSync(bundle, program('one'));
    const file = readFileSync(cache);
    file[file.length - 7] = (file[file.length - 7] as number) ^ 0xff;
    writeFileSync(cache, file);
    expect(launch()).toEqual({ status: 0, stdout: 'a/b one X Y true\n', stderr: 'stale' });
  });

  it('the writer refuses to run without its arguments (exit 2, usage)', () => {
    const r = spawnSync(process.execPath, [writer], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^usage: write-code-cache\.js <bundle> <cache>/);
  });
});

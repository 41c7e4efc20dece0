// Pure, but here because test/helpers/unit-purity.ts does not count bench/ as code (adding 'bench' to its
// CODE_ROOTS would let this file move to test/unit).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobufFull from 'protobufjs';
import protobuf from 'protobufjs/minimal.js';
import { describe, expect, it } from 'vitest';
import { fillLine } from '../../bench/corpus.js';
import { shebangNodeArgs } from '../../bench/e2e-bench.js';
import { shebangLaunch } from '../../support/first-line.js';
import { encodeStream } from '../../bench/ingest-bench.js';
import { measureLibraries, parseResident } from '../../bench/memory-floor.js';
import { parsePositional } from '../../bench/positional-args.js';
import { category } from '../../bench/profile-summary.js';
import { median, medianWithSpread } from '../../bench/stats.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { findApiProto } from '../../src/wire/grpc-api.js';

/** The fields of a serialized Chunk (api/api.proto), read with protobufjs's wire reader. */
function readChunk(buf: Buffer): { sequence: number; entries: Buffer; entryCount: number } {
  const r = protobuf.Reader.create(buf);
  let sequence = 0;
  let entries = Buffer.alloc(0);
  let entryCount = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) sequence = Number(r.uint64());
    else if (tag >>> 3 === 2) entries = Buffer.from(r.bytes());
    else if (tag >>> 3 === 3) entryCount = r.uint32();
    else r.skipType(tag & 7);
  }
  return { sequence, entries, entryCount };
}

describe('the ingest load generator', () => {
  it('pre-encodes Chunk messages carrying exactly its numbered lines, in order, within the chunk size, as LineBlocks like a collector', () => {
    const lineBytes = 120;
    const chunks = encodeStream(3, 500, 100, lineBytes, 4096);
    expect(chunks.length).toBeGreaterThan(1);
    const EntryBatch = protobufFull.loadSync(findApiProto()).lookupType('megacollector.v1.EntryBatch');
    for (const message of chunks) {
      const batch = EntryBatch.toObject(EntryBatch.decode(readChunk(message).entries)) as { runs: Array<{ lines?: unknown[]; blocks?: unknown[] }> };
      expect(batch.runs.map((r) => [r.lines?.length ?? 0, r.blocks?.length ?? 0])).toEqual([[0, 1]]);
    }
    const expected = Buffer.alloc(lineBytes);
    let seq = 500;
    chunks.forEach((message, i) => {
      const chunk = readChunk(message);
      expect(chunk.sequence).toBe(i + 1);
      expect(chunk.entries.length).toBeLessThanOrEqual(4096);
      const entries = decodeEntries(chunk.entries);
      expect(entries.length).toBe(chunk.entryCount);
      for (const e of entries) {
        fillLine(expected, 0, seq, lineBytes);
        expect(e.line.equals(expected.subarray(0, lineBytes - 1))).toBe(true);
        expect(e.offset).toBe((seq - 500) * lineBytes);
        expect(e.source.fileId).toBe('bench:3');
        seq++;
      }
    });
    expect(seq).toBe(600);
  });
});

describe('profile summary categories', () => {
  it('names packages, node modules, our files and V8 pseudo-frames', () => {
    expect(category({ functionName: 'x', url: 'file:///w/node_modules/@grpc/grpc-js/build/src/call.js', lineNumber: 1 })).toBe('@grpc/grpc-js');
    expect(category({ functionName: 'x', url: 'file:///w/node_modules/protobufjs/src/writer.js', lineNumber: 1 })).toBe('protobufjs');
    expect(category({ functionName: '_copyActual', url: 'node:buffer', lineNumber: 1 })).toBe('node:buffer');
    expect(category({ functionName: 'x', url: 'node:internal/fs/promises', lineNumber: 1 })).toBe('node:fs');
    expect(category({ functionName: 'addLine', url: 'file:///w/dist/src/wire/entry-batch.js', lineNumber: 1 })).toBe('src/wire/entry-batch.js');
    expect(category({ functionName: '(garbage collector)', url: '', lineNumber: -1 })).toBe('(garbage collector)');
    expect(category({ functionName: 'stat', url: '', lineNumber: -1 })).toBe('native: stat');
  });
});

describe('bench statistics', () => {
  it('takes medians of odd and even counts and prints the spread', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(medianWithSpread([1.234, 5, 2], 1)).toBe('2.0 (1.2–5.0)');
  });
});

describe('the e2e benchmark runs the programs as their bin line does', () => {
  it('takes variables and node options from a `#!/usr/bin/env -S [NAME=VALUE ...] node ...` line, none from `#!/usr/bin/env node`', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mc-shebang-'));
    try {
      const script = (name: string, first: string): string => {
        writeFileSync(join(dir, name), `${first}\nconsole.log(1);\n`);
        return join(dir, name);
      };
      expect(shebangNodeArgs(script('a.js', '#!/usr/bin/env -S node --max-semi-space-size=2 --stack-size=900'))).toEqual([
        '--max-semi-space-size=2',
        '--stack-size=900',
      ]);
      expect(shebangNodeArgs(script('b.js', '#!/usr/bin/env node'))).toEqual([]);
      expect(shebangNodeArgs(script('c.js', 'import x from "y";'))).toEqual([]);
      expect(shebangLaunch(script('d.js', '#!/usr/bin/env -S MALLOC_ARENA_MAX=2 A_B=x=y node --single-threaded-gc'))).toEqual({
        env: { MALLOC_ARENA_MAX: '2', A_B: 'x=y' },
        nodeArgs: ['--single-threaded-gc'],
      });
      expect(shebangLaunch(script('e.js', '#!/usr/bin/env -S python3 -u'))).toEqual({ env: {}, nodeArgs: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the memory floor benchmark', () => {
  it('reads VmRSS and its file-backed and anonymous parts from /proc status text, and refuses a status without them', () => {
    const status = 'Name:\tnode\nVmHWM:\t   80000 kB\nVmRSS:\t   71680 kB\nRssAnon:\t   25600 kB\nRssFile:\t   45056 kB\nRssShmem:\t    1024 kB\n';
    expect(parseResident(status)).toEqual({ rssMiB: 70, fileMiB: 44, anonMiB: 25 });
    expect(() => parseResident('VmRSS:\t 1 kB\n')).toThrow(/RssFile/);
  });

  it('measures a child that loads the named modules, started with the collector first line options', async () => {
    const bare = await measureLibraries([], 0);
    const withGrpc = await measureLibraries(['@grpc/grpc-js'], 0);
    for (const r of [bare, withGrpc]) {
      expect(r.fileMiB).toBeGreaterThan(5);
      expect(r.anonMiB).toBeGreaterThan(1);
      // RSS is the file-backed, anonymous and shared-memory pages together.
      expect(r.rssMiB).toBeGreaterThanOrEqual(r.fileMiB + r.anonMiB - 0.01);
    }
    // Loading grpc-js (and node's http2 with it) can only add pages.
    expect(withGrpc.rssMiB).toBeGreaterThan(bare.rssMiB);
  }, 30_000);
});

describe('the suite command line', () => {
  const suite = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bench', 'suite.js');

  it('prints its usage for --help, and one line with the usage (exit 2, no stack trace) for an unknown option', () => {
    const help = spawnSync(process.execPath, [suite, '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: node dist\/bench\/suite\.js \[ingest\]/);
    const bad = spawnSync(process.execPath, [suite, '--bogus'], { encoding: 'utf8', timeout: 20_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^suite: Unknown option '--bogus'/);
    expect(bad.stderr).toContain('usage: node dist/bench/suite.js');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('the benchmark scripts\' positional arguments', () => {
  const usage = 'usage: x.js [lines=1000000] [emitter=file|blackhole]';
  const specs = [
    { name: 'lines', fallback: 1_000_000 },
    { name: 'emitter', fallback: 'file', choices: ['file', 'blackhole'] },
  ] as const;

  it('gives the defaults, takes whole numbers and known words, refuses the rest with one line and the usage', () => {
    expect(parsePositional([], usage, specs)).toEqual({ ok: true, values: [1_000_000, 'file'] });
    expect(parsePositional(['2000', 'blackhole'], usage, specs)).toEqual({ ok: true, values: [2000, 'blackhole'] });
    expect(parsePositional(['--help'], usage, specs)).toEqual({ ok: false, exitCode: 0, text: usage });
    expect(parsePositional(['10', '-h'], usage, specs)).toEqual({ ok: false, exitCode: 0, text: usage });
    for (const bad of ['abc', '1e6', '-5', '0', '1.5', '']) {
      expect(parsePositional([bad], usage, specs)).toEqual({ ok: false, exitCode: 2, text: `lines: "${bad}" is not a whole number of at least 1\n${usage}` });
    }
    expect(parsePositional(['10', 'stdout'], usage, specs)).toEqual({ ok: false, exitCode: 2, text: `emitter: "stdout" is not one of file, blackhole\n${usage}` });
    expect(parsePositional(['10', 'file', 'x'], usage, specs)).toEqual({ ok: false, exitCode: 2, text: `unexpected argument "x"\n${usage}` });
  });

  it('e2e-bench: --help prints the usage and runs nothing; a bad count exits 2 at once (it used to wait ten minutes for NaN bytes)', () => {
    const e2e = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bench', 'e2e-bench.js');
    const help = spawnSync(process.execPath, [e2e, '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toBe('usage: node dist/bench/e2e-bench.js [lines=1000000] [lineBytes=120] [emitter=file|blackhole]\n');
    const bad = spawnSync(process.execPath, [e2e, 'lots'], { encoding: 'utf8', timeout: 20_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^lines: "lots" is not a whole number of at least 1\nusage: node dist\/bench\/e2e-bench\.js/);
  });

  it('idle-bench: --help prints the usage and runs nothing; a bad count exits 2 at once with the usage', () => {
    const idle = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bench', 'idle-bench.js');
    const usage = 'usage: node dist/bench/idle-bench.js [files=1000] [seconds=10] [runs=3]';
    const help = spawnSync(process.execPath, [idle, '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect([help.status, help.stdout]).toEqual([0, `${usage}\n`]);
    const bad = spawnSync(process.execPath, [idle, '1000', 'ten'], { encoding: 'utf8', timeout: 20_000 });
    expect([bad.status, bad.stderr]).toEqual([2, `seconds: "ten" is not a whole number of at least 1\n${usage}\n`]);
  });

  it('ab-bench: --help prints the usage; no other checkout, one without a build, or a bad count exits 2 at once with the usage', () => {
    const ab = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'bench', 'ab-bench.js');
    const usage = 'usage: node dist/bench/ab-bench.js <other checkout, built> [pairs=3] [lines=1000000]';
    const help = spawnSync(process.execPath, [ab, '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect([help.status, help.stdout]).toEqual([0, `${usage}\n`]);
    const none = spawnSync(process.execPath, [ab], { encoding: 'utf8', timeout: 20_000 });
    expect([none.status, none.stderr]).toEqual([2, `no other checkout given\n${usage}\n`]);
    const empty = mkdtempSync(join(tmpdir(), 'mc-ab-test-'));
    try {
      const unbuilt = spawnSync(process.execPath, [ab, empty], { encoding: 'utf8', timeout: 20_000 });
      expect([unbuilt.status, unbuilt.stderr]).toEqual([2, `${empty} has no dist/bench/e2e-bench.js (build it first)\n${usage}\n`]);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
    const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const bad = spawnSync(process.execPath, [ab, repo, 'two'], { encoding: 'utf8', timeout: 20_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe(`pairs: "two" is not a whole number of at least 1\n${usage}\n`);
  });
});

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** The README's first command ends in `node dist/cmd/demo/main.js`; run it as a user would, for a few seconds. */
describe('npm start demo', () => {
  it('ships the sample log through a real aggregator and collector, prints status, and stops cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mc-demo-'));
    try {
      const child = spawn(process.execPath, ['dist/cmd/demo/main.js'], {
        env: { ...process.env, DEMO_DIR: dir, DEMO_DURATION: '10' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect(code, stderr).toBe(0);
      // The text emitter printed the sample lines the demo wrote, in order.
      const numbers = [...stdout.matchAll(/request path=\S+ status=200 duration_ms=\d+ n=(\d+)/g)].map((m) => Number(m[1]));
      const written = Number(/\[demo\] done: written (\d+) lines, exit codes collector=0 aggregator=0/.exec(stderr)?.[1]);
      expect(written).toBeGreaterThan(100);
      // Every line written, across the rotation at 8 s, came out exactly once and in order: the collector
      // drains on SIGTERM and the aggregator emits what it holds before exiting.
      expect(numbers).toEqual(Array.from({ length: written }, (_, i) => i + 1));
      expect(stderr).toMatch(/\[demo\] written \d+ {2}emitted \d+ in \d+ batches {2}lag -?\d+ lines {2}rotations \d/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

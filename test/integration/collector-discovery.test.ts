import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Discovery } from '../../src/collector/discovery.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { systemClock } from '../../src/util/clock.js';
import { waitUntil } from '../helpers/collector-delivery.js';

let dir: string;
let discovery: Discovery | undefined;
afterEach(async () => {
  await discovery?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Discovery', () => {
  it('finds files matching ** globs, including in directories created after start, and ignores others', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-disc-'));
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    writeFileSync(join(dir, 'a', 'b', 'app.log'), 'x\n');
    writeFileSync(join(dir, 'a', 'notes.txt'), 'x\n');
    const found = new Set<string>();
    discovery = new Discovery([join(dir, '**', '*.log')], { rescanIntervalMs: 50, clock: systemClock, logger: silentLogger() }, {
      found: (paths) => paths.forEach((p) => found.add(p)),
      changed: () => undefined,
    });
    const initial = await discovery.start();
    expect(initial).toEqual([join(dir, 'a', 'b', 'app.log')]);
    mkdirSync(join(dir, 'later', 'deep'), { recursive: true });
    writeFileSync(join(dir, 'later', 'deep', 'new.log'), 'y\n');
    writeFileSync(join(dir, 'later', 'deep', 'new.txt'), 'y\n');
    expect(await waitUntil(() => found.has(join(dir, 'later', 'deep', 'new.log')), 5000, 20)).toBe(true);
    expect([...found].some((p) => p.endsWith('.txt'))).toBe(false);
    expect(discovery.matches(join(dir, 'x', 'y', 'z.log'))).toBe(true);
    expect(discovery.matches(join(dir, 'x', 'z.log.1'))).toBe(false);
  });

  it('regression: reports files created right after start and paths recreated after a rename, without waiting for a rescan', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-disc-'));
    const reports: string[] = [];
    discovery = new Discovery([join(dir, '*.log')], { rescanIntervalMs: 60_000, clock: systemClock, logger: silentLogger() }, {
      found: (paths) => reports.push(...paths),
      changed: () => undefined,
    });
    expect(await discovery.start()).toEqual([]);
    const live = join(dir, 'app.log');
    writeFileSync(live, 'first\n');
    expect(await waitUntil(() => reports.includes(live), 5000, 10)).toBe(true);
    renameSync(live, `${live}.1`);
    reports.length = 0;
    writeFileSync(live, 'second\n');
    appendFileSync(live, 'more\n');
    expect(await waitUntil(() => reports.includes(live), 5000, 10)).toBe(true);
  });
});

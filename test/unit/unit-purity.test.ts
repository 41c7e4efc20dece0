import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ImpureUnitTestError } from '../helpers/unit-purity.js';
import { TEST_SEED } from '../helpers/seeded-random.js';

/** The unit layer's guard (test/helpers/unit-purity.ts) is in force: a regression to real I/O fails. */
describe('unit test purity', () => {
  it('refuses file writes anywhere and reads outside code and fixtures', async () => {
    expect(() => writeFileSync(join(tmpdir(), 'mc-unit-purity'), 'x')).toThrow(ImpureUnitTestError);
    expect(() => readFileSync('README.md')).toThrow(ImpureUnitTestError);
    await expect(readFile('deploy/prometheus/alerts.yml')).rejects.toThrow(ImpureUnitTestError);
    expect(() => realpathSync.native('/etc')).toThrow(ImpureUnitTestError);
    expect(readFileSync('src/errors.ts', 'utf8')).toContain('export');
    expect(realpathSync.native('src')).toMatch(/src$/);
  });

  it('refuses sockets, UDP and child processes', () => {
    expect(() => createServer().listen(0)).toThrow(ImpureUnitTestError);
    expect(() => connect(9, '127.0.0.1')).toThrow(ImpureUnitTestError);
    expect(() => createSocket('udp4').bind(0)).toThrow(ImpureUnitTestError);
    expect(() => execFileSync('true')).toThrow(ImpureUnitTestError);
  });

  it('refuses real sleeps but lets code yield with a zero delay', async () => {
    expect(() => setTimeout(() => undefined, 10)).toThrow(ImpureUnitTestError);
    await new Promise((resolve) => setTimeout(resolve, 0));
  });

  it('draws every fast-check property from TEST_SEED', () => {
    expect(fc.readConfigureGlobal().seed).toBe(TEST_SEED);
  });
});

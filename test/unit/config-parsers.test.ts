import { describe, expect, it } from 'vitest';
import { parseByteSize } from '../../src/config/byte-size.js';
import { parseGoDuration } from '../../src/config/duration.js';
import { parseHostPort } from '../../src/config/address.js';
import { ConfigError } from '../../src/errors.js';
import { durationMs, integer, json, option, parseArgs, resolveOptions, formatHelp } from '../../src/config/options.js';
import { z } from 'zod';

describe('parseGoDuration', () => {
  it.each([
    ['300ms', 300],
    ['1.5s', 1500],
    ['1h2m', 3_720_000],
    ['2h45m30.5s', 9_930_500],
    ['0', 0],
    ['15s', 15_000],
    ['100us', 0.1],
    ['-1s', -1000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each(['', '15', 'abc', '1x', '1s2', 's', '1.5.5s'])('rejects %j', (text) => {
    expect(() => parseGoDuration(text)).toThrow();
  });
});

describe('parseByteSize', () => {
  it.each([
    ['1GiB', 1024 ** 3],
    ['64MiB', 64 * 1024 ** 2],
    ['4096', 4096],
    ['1MB', 1_000_000],
    ['10k', 10 * 1024],
    ['1.5KiB', 1536],
  ])('%s is %d bytes', (text, n) => {
    expect(parseByteSize(text)).toBe(n);
  });

  it.each(['', 'MiB', '-1', '1XB', '1 2'])('rejects %j', (text) => {
    expect(() => parseByteSize(text)).toThrow();
  });
});

describe('parseHostPort', () => {
  it('parses IPv4, bracketed IPv6 with zone, and bare port', () => {
    expect(parseHostPort('127.0.0.1:8000')).toEqual({ host: '127.0.0.1', port: 8000 });
    expect(parseHostPort('[::]:8000')).toEqual({ host: '::', port: 8000 });
    expect(parseHostPort('[fe80::1%eth0]:9')).toEqual({ host: 'fe80::1%eth0', port: 9 });
    expect(parseHostPort(':0')).toEqual({ host: '::', port: 0 });
  });
  it('rejects unbracketed IPv6 and bad ports', () => {
    expect(() => parseHostPort('::1:80')).toThrow(/brackets/);
    expect(() => parseHostPort('host:99999')).toThrow(/range/);
    expect(() => parseHostPort('host')).toThrow();
  });
});

describe('option tables', () => {
  const table = {
    batch: option({ env: 'X_BATCH', default: '10', description: 'batch size', schema: integer({ min: 1 }) }),
    every: option({ env: 'X_EVERY', flag: '--every', default: '1s', description: 'period', schema: durationMs() }),
    conf: option({ env: 'X_CONF', description: 'json', schema: json(z.object({ path: z.string() })) }),
  };

  it('applies defaults, env, then flags', () => {
    const v = resolveOptions(table, { X_BATCH: '5' }, parseArgs(table, ['--every', '2s']).flags);
    expect(v).toEqual({ batch: 5, every: 2000, conf: undefined });
    expect(Object.isFrozen(v)).toBe(true);
  });

  it('names every variable at fault in one line', () => {
    let err: unknown;
    try {
      resolveOptions(table, { X_BATCH: '0', X_EVERY: '5', X_CONF: '{"path": 3}' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).not.toContain('\n');
    expect(msg).toMatch(/X_BATCH: must be at least 1/);
    expect(msg).toMatch(/X_EVERY: missing unit/);
    expect(msg).toMatch(/X_CONF: path: /);
  });

  it('reports bad JSON', () => {
    expect(() => resolveOptions(table, { X_CONF: '{nope' })).toThrow(/X_CONF: not valid JSON/);
  });

  it('rejects unknown flags and prints help from the table', () => {
    expect(() => parseArgs(table, ['--nope', '1'])).toThrow(/unknown flag --nope/);
    const help = formatHelp('prog', 'does things', table);
    expect(help).toContain('X_EVERY (flag --every)  [default 1s]');
    expect(help).toContain('X_CONF  [optional]');
  });
});

import { describe, expect, it } from 'vitest';
import { loadAggregatorConfig } from '../../src/config/aggregator-config.js';
import { parsePathTemplate } from '../../src/emitters/path-template.js';

describe('file emitter path template (strftime fields, UTC)', () => {
  const at = Date.UTC(2026, 1, 3, 4, 5, 6, 789); // 2026-02-03T04:05:06.789Z, day 34 of the year

  it('a path without % is used as is and is not timed', () => {
    const t = parsePathTemplate('/var/log/shipped.log');
    expect(t.timed).toBe(false);
    expect(t.render(at)).toBe('/var/log/shipped.log');
  });

  it('renders every supported field in UTC, zero-padded; %% is a literal %', () => {
    const t = parsePathTemplate('/var/log/s-%Y-%m-%d_%H%M%S-%j-%F-%s-100%%.log');
    expect(t.timed).toBe(true);
    expect(t.render(at)).toBe(`/var/log/s-2026-02-03_040506-034-2026-02-03-${Math.floor(at / 1000)}-100%.log`);
    expect(parsePathTemplate('/x/a%%b.log')).toMatchObject({ timed: false });
    expect(parsePathTemplate('/x/a%%b.log').render(at)).toBe('/x/a%b.log');
  });

  it('refuses unknown fields, a trailing %, and fields in the directory part, saying why', () => {
    expect(() => parsePathTemplate('/var/log/s-%Q.log')).toThrow(/unsupported strftime field "%Q".*supported: %Y/);
    expect(() => parsePathTemplate('/var/log/s-%')).toThrow(/unsupported strftime field "%"/);
    expect(() => parsePathTemplate('/var/log/%Y/s.log')).toThrow(/file name only/);
  });

  it('the configuration refuses a bad template in one line naming the variable', () => {
    expect(() => loadAggregatorConfig({ AGGREGATOR_FILE_CONFIGURATION: '{"path": "/var/log/%Y/s.log"}' }, new Map())).toThrow(
      /AGGREGATOR_FILE_CONFIGURATION: path: strftime fields are allowed in the file name only/,
    );
    const ok = loadAggregatorConfig({ AGGREGATOR_FILE_CONFIGURATION: '{"path": "/var/log/s-%Y-%m-%d.log"}' }, new Map());
    expect(ok.emitter).toMatchObject({ kind: 'file', config: { path: '/var/log/s-%Y-%m-%d.log' } });
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aggregatorOptions } from '../../src/config/aggregator-config.js';
import { collectorOptions } from '../../src/config/collector-config.js';
import { formatMarkdownTable } from '../../src/config/options.js';
import type { OptionTable } from '../../src/config/options.js';

const readme = readFileSync('README.md', 'utf8');

function block(name: string): string {
  const m = new RegExp(`<!-- env:${name} -->\\n([\\s\\S]*?)\\n<!-- /env:${name} -->`).exec(readme);
  expect(m, `README has an env:${name} block`).not.toBeNull();
  return (m as RegExpExecArray)[1] as string;
}

describe('README', () => {
  it.each([
    ['aggregator', aggregatorOptions],
    ['collector', collectorOptions],
  ] as Array<[string, OptionTable]>)('documents every %s variable exactly as its option table (and --help) says', (name, table) => {
    // On failure, paste the expected block into the README.
    expect(block(name)).toBe(formatMarkdownTable(table));
  });

  it('names no variable the programs do not know', () => {
    const known = new Set([...Object.values(aggregatorOptions), ...Object.values(collectorOptions)].map((s) => s.env));
    for (const m of readme.matchAll(/\b((?:AGGREGATOR|COLLECTOR)_[A-Z_]+[A-Z])\b/g)) {
      const name = m[1] as string;
      // Prose may shorten a family, as in COLLECTOR_TLS_CERTIFICATE/_KEY.
      expect(known.has(name), name).toBe(true);
    }
  });

  it('has the two quick-start commands, and CI runs exactly its test command after installing from the lockfile', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
    const ci = readFileSync('.ci/run', 'utf8');
    expect(ci).toMatch(/^npm ci$/m);
    expect(ci).toMatch(/^npm test$/m);
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toContain('dist/cmd/demo/main.js');
    expect(scripts.test).toContain('vitest run');
  });
});

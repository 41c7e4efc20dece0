/**
 * Go duration syntax (time.ParseDuration): a sequence of decimal numbers with optional fractions and
 * unit suffixes, e.g. "300ms", "1.5s", "1h2m", "2h45m30.5s"; units ns, us (or µs/μs), ms, s, m, h.
 * "0" alone is allowed. Returns milliseconds (fractional below 1 ms).
 */
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

export function parseGoDuration(text: string): number {
  let s = text.trim();
  if (s === '') throw new Error('empty duration');
  let sign = 1;
  if (s[0] === '-' || s[0] === '+') {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new Error(`invalid duration "${text}"`);
  let total = 0;
  while (s.length > 0) {
    const m = PART.exec(s);
    if (m === null) {
      if (/^\d/.test(s) && !/[a-zµμ]/i.test(s)) throw new Error(`missing unit in duration "${text}" (e.g. "${s}s")`);
      throw new Error(`invalid duration "${text}": use Go syntax such as 300ms, 1.5s, 1h2m`);
    }
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    s = s.slice(m[0].length);
  }
  if (!Number.isFinite(total)) throw new Error(`duration "${text}" is out of range`);
  return sign * total;
}

/** Formats milliseconds back into a short Go duration, for help text and logs. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

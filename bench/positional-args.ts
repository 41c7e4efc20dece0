/**
 * The positional arguments of a benchmark script (`node dist/bench/x.js [lines=1000000] ...`), checked
 * before anything runs: `--help` or `-h` prints the usage (exit 0); a number that is not a whole number
 * at least its minimum, a word not among its choices, or one argument too many is one line and the
 * usage (exit 2). Before, `Number('--help')` was NaN and e2e-bench waited ten minutes for NaN bytes.
 */
export type PositionalSpec =
  | { readonly name: string; readonly fallback: number; readonly min?: number }
  | { readonly name: string; readonly fallback: string; readonly choices: readonly string[] };

export type Parsed = { readonly ok: true; readonly values: readonly (number | string)[] } | { readonly ok: false; readonly exitCode: 0 | 2; readonly text: string };

export function parsePositional(argv: readonly string[], usage: string, specs: readonly PositionalSpec[]): Parsed {
  if (argv.includes('--help') || argv.includes('-h')) return { ok: false, exitCode: 0, text: usage };
  const refuse = (why: string): Parsed => ({ ok: false, exitCode: 2, text: `${why}\n${usage}` });
  if (argv.length > specs.length) return refuse(`unexpected argument "${argv[specs.length] as string}"`);
  const values: (number | string)[] = [];
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i] as PositionalSpec;
    const arg = argv[i];
    if (arg === undefined) {
      values.push(spec.fallback);
    } else if ('choices' in spec) {
      if (!spec.choices.includes(arg)) return refuse(`${spec.name}: "${arg}" is not one of ${spec.choices.join(', ')}`);
      values.push(arg);
    } else {
      const n = Number(arg);
      const min = spec.min ?? 1;
      if (!/^\d+$/.test(arg) || !Number.isSafeInteger(n) || n < min) return refuse(`${spec.name}: "${arg}" is not a whole number of at least ${min}`);
      values.push(n);
    }
  }
  return { ok: true, values };
}

/** parsePositional on this process's arguments; prints and exits unless they are good. */
export function positionalArgs(usage: string, specs: readonly PositionalSpec[]): readonly (number | string)[] {
  const parsed = parsePositional(process.argv.slice(2), usage, specs);
  if (parsed.ok) return parsed.values;
  (parsed.exitCode === 0 ? process.stdout : process.stderr).write(`${parsed.text}\n`);
  process.exit(parsed.exitCode);
}

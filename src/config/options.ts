import * as z from 'zod';
import { ConfigError } from '../errors.js';
import { parseHostPort } from './address.js';
import { parseByteSize } from './byte-size.js';
import { parseGoDuration } from './duration.js';
import { loadPem } from './pem.js';

/**
 * One table of options per program, used both to validate the environment (and flags) and to print
 * `--help`, so the two cannot drift. Every value arrives as a string (env var or flag), goes through
 * its zod schema once, here at the edge, and the program receives a frozen, typed result.
 */
export interface OptionSpec<T, Present extends boolean = boolean> {
  readonly env: string;
  /** Long flag that overrides the env var, e.g. "--listen". */
  readonly flag?: string;
  /** The default as a user would write it; parsed like user input. */
  readonly default?: string;
  readonly required?: boolean;
  readonly description: string;
  readonly schema: z.ZodType<T, string>;
  /** Type-level marker: is the value always present (default or required)? */
  readonly present?: Present;
}

export function option<T>(spec: Omit<OptionSpec<T>, 'present' | 'required'> & { default: string }): OptionSpec<T, true>;
export function option<T>(spec: Omit<OptionSpec<T>, 'present' | 'default'> & { required: true }): OptionSpec<T, true>;
export function option<T>(spec: Omit<OptionSpec<T>, 'present' | 'default' | 'required'>): OptionSpec<T, false>;
export function option<T>(spec: OptionSpec<T>): OptionSpec<T, boolean> {
  return spec;
}

export type OptionTable = Record<string, OptionSpec<unknown>>;

export type OptionValues<S extends OptionTable> = {
  readonly [K in keyof S]: S[K] extends OptionSpec<infer T, infer P> ? (P extends true ? T : T | undefined) : never;
};

function fromParser<T>(parse: (raw: string) => T): z.ZodType<T, string> {
  return z.string().transform((raw, ctx) => {
    try {
      return parse(raw);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  });
}

/** Go duration to milliseconds, e.g. "1.5s". */
export const durationMs = (opts: { min?: number } = {}): z.ZodType<number, string> =>
  fromParser((raw) => {
    const ms = parseGoDuration(raw);
    const min = opts.min ?? 0;
    if (ms < min) throw new Error(`duration "${raw}" must be at least ${min}ms`);
    return ms;
  });

/** Byte size, e.g. "64MiB". */
export const bytes = (opts: { min?: number } = {}): z.ZodType<number, string> =>
  fromParser((raw) => {
    const n = parseByteSize(raw);
    if (opts.min !== undefined && n < opts.min) throw new Error(`"${raw}" must be at least ${opts.min} bytes`);
    return n;
  });

export const integer = (opts: { min?: number; max?: number } = {}): z.ZodType<number, string> =>
  fromParser((raw) => {
    if (!/^\s*-?\d+\s*$/.test(raw)) throw new Error(`expected a whole number, got "${raw}"`);
    const n = Number(raw);
    if (!Number.isSafeInteger(n)) throw new Error(`"${raw}" is out of range`);
    if (opts.min !== undefined && n < opts.min) throw new Error(`must be at least ${opts.min}, got ${n}`);
    if (opts.max !== undefined && n > opts.max) throw new Error(`must be at most ${opts.max}, got ${n}`);
    return n;
  });

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off', '']);

export const boolean = (): z.ZodType<boolean, string> =>
  fromParser((raw) => {
    const v = raw.trim().toLowerCase();
    if (TRUE.has(v)) return true;
    if (FALSE.has(v)) return false;
    throw new Error(`expected 1/true/yes/on or 0/false/no/off, got "${raw}"`);
  });

export const text = (opts: { nonEmpty?: boolean } = {}): z.ZodType<string, string> =>
  fromParser((raw) => {
    if (opts.nonEmpty === true && raw.trim() === '') throw new Error('must not be empty');
    return raw;
  });

export const oneOf = <const V extends readonly [string, ...string[]]>(values: V): z.ZodType<V[number], string> =>
  fromParser((raw) => {
    const v = raw.trim();
    if (!(values as readonly string[]).includes(v)) throw new Error(`expected one of ${values.join(', ')}, got "${raw}"`);
    return v as V[number];
  });

/** A "host:port" / "[v6]:port" address (see address.ts), checked and kept as text. */
export const hostPort = (): z.ZodType<string, string> =>
  fromParser((raw) => {
    parseHostPort(raw);
    return raw.trim();
  });

/** PEM text or a path to a PEM file, loaded at start-up so a missing file is a configuration error. */
export const pem = (what: string): z.ZodType<Buffer, string> => fromParser((raw) => loadPem(raw, what));

/** A JSON document validated by `schema`; problems name the JSON path. */
export const json = <T>(schema: z.ZodType<T>): z.ZodType<T, string> =>
  fromParser((raw) => {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new Error(`not valid JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    const result = schema.safeParse(value);
    if (!result.success) throw new Error(result.error.issues.map(formatIssue).join(', '));
    return result.data;
  });

function formatIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
  return `${where}${issue.message}`;
}

export interface ParsedArgs {
  /** Flag values by flag name ("--listen" → value). */
  readonly flags: ReadonlyMap<string, string>;
  /** Arguments that are not flags (sub-commands). */
  readonly positional: readonly string[];
  readonly help: boolean;
  readonly version: boolean;
}

/** Splits argv into known flags (`--x value` or `--x=value`), --help/--version and positionals. */
export function parseArgs(table: OptionTable, argv: readonly string[]): ParsedArgs {
  const known = new Set(Object.values(table).flatMap((s) => (s.flag === undefined ? [] : [s.flag])));
  const flags = new Map<string, string>();
  const positional: string[] = [];
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') help = true;
    else if (arg === '--version' || arg === '-v') version = true;
    else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg : arg.slice(0, eq);
      if (!known.has(name)) throw new ConfigError([`unknown flag ${name} (see --help)`]);
      let value: string | undefined;
      if (eq !== -1) value = arg.slice(eq + 1);
      else value = argv[++i];
      if (value === undefined) throw new ConfigError([`${name}: needs a value`]);
      flags.set(name, value);
    } else positional.push(arg);
  }
  return { flags, positional, help, version };
}

/**
 * Resolves every option: flag, else env var, else default. Collects all problems and throws one
 * ConfigError whose message names each variable at fault.
 */
export function resolveOptions<S extends OptionTable>(
  table: S,
  env: NodeJS.ProcessEnv,
  flags: ReadonlyMap<string, string> = new Map(),
): OptionValues<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(table)) {
    const fromFlag = spec.flag === undefined ? undefined : flags.get(spec.flag);
    const fromEnv = env[spec.env];
    const raw = fromFlag ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined) ?? spec.default;
    const name = fromFlag !== undefined ? (spec.flag as string) : spec.env;
    if (raw === undefined) {
      if (spec.required === true) problems.push(`${spec.env}: required (${spec.description})`);
      out[key] = undefined;
      continue;
    }
    const result = spec.schema.safeParse(raw);
    if (result.success) out[key] = result.data;
    else problems.push(`${name}: ${result.error.issues.map(formatIssue).join(', ')}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(out) as OptionValues<S>;
}

/** `--help` text generated from the same table that validates the configuration. */
export function formatHelp(program: string, summary: string, table: OptionTable, extra = ''): string {
  const lines = [`Usage: ${program} [flags]`, '', summary, '', 'Environment variables (flags override them):', ''];
  for (const spec of Object.values(table)) {
    const flag = spec.flag === undefined ? '' : ` (flag ${spec.flag})`;
    const dflt = spec.required === true ? 'required' : spec.default !== undefined ? `default ${spec.default}` : 'optional';
    lines.push(`  ${spec.env}${flag}  [${dflt}]`);
    lines.push(`      ${spec.description}`);
  }
  lines.push('', '  --help      print this text', '  --version   print the version');
  if (extra !== '') lines.push('', extra);
  return `${lines.join('\n')}\n`;
}

/** The README's table of a program's variables, rendered from the same table (test/integration/readme.test.ts keeps them equal). */
export function formatMarkdownTable(table: OptionTable): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  const rows = ['| variable | flag | default | meaning |', '| --- | --- | --- | --- |'];
  for (const spec of Object.values(table)) {
    const flag = spec.flag === undefined ? '' : `\`${spec.flag}\``;
    const dflt = spec.required === true ? 'required' : spec.default !== undefined ? `\`${spec.default}\`` : '—';
    rows.push(`| \`${spec.env}\` | ${flag} | ${dflt} | ${cell(spec.description)} |`);
  }
  return rows.join('\n');
}

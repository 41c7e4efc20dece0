import { basename, dirname } from 'node:path';

/**
 * An output path with strftime fields, as Vector's file sink takes them: `/var/log/shipped-%Y-%m-%d.log`
 * writes each batch to the file named by the time it is emitted (UTC), so the output rotates by itself.
 * Fields only in the file name: a directory that changes with time would have to be created, and the
 * file emitter never creates directories.
 */
export interface PathTemplate {
  /** Does the path change with time? */
  readonly timed: boolean;
  /** The path at `epochMs` (wall-clock milliseconds). */
  render(epochMs: number): string;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** The supported fields; each renders the UTC date. */
const FIELDS: Readonly<Record<string, (d: Date) => string>> = {
  Y: (d) => pad(d.getUTCFullYear(), 4),
  m: (d) => pad(d.getUTCMonth() + 1),
  d: (d) => pad(d.getUTCDate()),
  H: (d) => pad(d.getUTCHours()),
  M: (d) => pad(d.getUTCMinutes()),
  S: (d) => pad(d.getUTCSeconds()),
  j: (d) => pad(Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3),
  F: (d) => `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
  s: (d) => String(Math.floor(d.getTime() / 1000)),
};

/** The field letters a path may use, for messages. */
export const PATH_TEMPLATE_FIELDS = [...Object.keys(FIELDS).map((f) => `%${f}`), '%%'];

type Part = string | ((d: Date) => string);

/**
 * Parses a path; throws an Error whose message says what is wrong (an unknown field, a field in the
 * directory part). A path without `%` is returned as is.
 */
export function parsePathTemplate(path: string): PathTemplate {
  if (!path.includes('%')) return { timed: false, render: () => path };
  if (dirname(path).includes('%')) {
    throw new Error(`strftime fields are allowed in the file name only, not in the directory "${dirname(path)}"`);
  }
  const name = basename(path);
  const prefix = path.slice(0, path.length - name.length);
  const parts: Part[] = [prefix];
  let literal = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i] as string;
    if (c !== '%') {
      literal += c;
      continue;
    }
    const field = name[++i];
    if (field === '%') {
      literal += '%';
      continue;
    }
    const fn = field === undefined ? undefined : FIELDS[field];
    if (fn === undefined) {
      throw new Error(`unsupported strftime field "%${field ?? ''}" in "${name}" (supported: ${PATH_TEMPLATE_FIELDS.join(' ')})`);
    }
    parts.push(literal, fn);
    literal = '';
  }
  parts.push(literal);
  const timed = parts.some((p) => typeof p !== 'string');
  if (!timed) {
    const fixed = parts.join('');
    return { timed, render: () => fixed };
  }
  return {
    timed,
    render: (epochMs) => {
      const d = new Date(epochMs);
      let out = '';
      for (const p of parts) out += typeof p === 'string' ? p : p(d);
      return out;
    },
  };
}

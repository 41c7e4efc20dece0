import type { OptionTable } from '../config/options.js';

/**
 * The effective configuration as an operator wrote it (flag, else env var, else default), for
 * `validate` to print, with secrets redacted: private keys given as PEM text, and credential fields
 * of JSON settings (PagerDuty's integration key). Paths to key files are shown: they are not secret.
 */
export interface EffectiveSetting {
  readonly env: string;
  readonly value: string | undefined;
  readonly source: 'flag' | 'env' | 'default' | 'unset';
}

const SECRET_JSON_FIELD = /^(integration_key|routing_key|token|password|secret|api_key)$/i;

export function redact(value: string): string {
  const trimmed = value.trim();
  if (trimmed.includes('-----BEGIN') && /PRIVATE KEY/.test(trimmed)) return '<redacted: PEM private key>';
  if (trimmed.startsWith('{')) {
    try {
      const parsed = JSON.parse(trimmed) as unknown;
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        const out = Object.fromEntries(
          Object.entries(parsed as Record<string, unknown>).map(([k, v]) => [k, SECRET_JSON_FIELD.test(k) ? '<redacted>' : v]),
        );
        return JSON.stringify(out);
      }
    } catch {
      // not JSON: shown as given (the configuration check has already reported it)
    }
  }
  return value;
}

export function effectiveSettings(table: OptionTable, env: NodeJS.ProcessEnv, flags: ReadonlyMap<string, string>): EffectiveSetting[] {
  return Object.values(table).map((spec) => {
    const fromFlag = spec.flag === undefined ? undefined : flags.get(spec.flag);
    if (fromFlag !== undefined) return { env: spec.env, value: redact(fromFlag), source: 'flag' };
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== '') return { env: spec.env, value: redact(fromEnv), source: 'env' };
    if (spec.default !== undefined) return { env: spec.env, value: spec.default, source: 'default' };
    return { env: spec.env, value: undefined, source: 'unset' };
  });
}

export function formatSettings(settings: readonly EffectiveSetting[]): string {
  const width = Math.max(...settings.map((s) => s.env.length));
  return settings
    .map((s) => `  ${s.env.padEnd(width)}  ${s.value === undefined ? '(unset)' : s.value.replace(/\n/g, '\\n')}${s.source === 'default' ? '  (default)' : s.source === 'flag' ? '  (flag)' : ''}`)
    .join('\n');
}

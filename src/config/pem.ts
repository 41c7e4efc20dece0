import { readFileSync } from 'node:fs';

/**
 * TLS material is given as PEM text or as a path to a PEM file (containers mount secrets as files,
 * orchestrators inject them as env text). Returns the PEM bytes; throws a message fit for a one-line
 * configuration error.
 */
export function loadPem(value: string, what: string): Buffer {
  const trimmed = value.trim();
  if (trimmed.includes('-----BEGIN ')) {
    // Env files often carry PEM with literal "\n" sequences.
    return Buffer.from(trimmed.includes('\\n') ? trimmed.replace(/\\n/g, '\n') : trimmed);
  }
  let data: Buffer;
  try {
    data = readFileSync(trimmed);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`cannot read ${what} file "${trimmed}" (${code}); give PEM text or a readable path`);
  }
  if (!data.includes('-----BEGIN ')) throw new Error(`${what} file "${trimmed}" holds no PEM block`);
  return data;
}

/** loadPem for a configuration loader: a failure becomes a problem naming `env`, and undefined. */
export function readPemSetting(env: string, value: string, what: string, problems: string[]): Buffer | undefined {
  try {
    return loadPem(value, what);
  } catch (err) {
    problems.push(`${env}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

import { ConfigError, ErrorCode, McError, errorMessage } from '../errors.js';

/**
 * Start-up failures that an operator fixes in one setting (a taken port, an address no interface
 * has, a spool path under a file, a spool another aggregator holds) become a ConfigError naming
 * that variable: one line, exit 2, like any other configuration problem. Anything else (a bug, a
 * corrupt spool) passes through unchanged.
 */
export function isSettingFailure(err: unknown): boolean {
  if (err instanceof McError) return err.code === ErrorCode.SpoolLocked;
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code);
}

/** Runs `start`; a setting failure becomes `ConfigError("<env>: <message>")`. */
export async function namingSetting<T>(env: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof ConfigError || !isSettingFailure(err)) throw err;
    throw new ConfigError([`${env}: ${errorMessage(err)}`]);
  }
}

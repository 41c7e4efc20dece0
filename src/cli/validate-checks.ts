import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { parseHostPort } from '../config/address.js';
import { prepareDirectory } from '../config/directory.js';
import { errorMessage } from '../errors.js';

/**
 * The checks `validate` runs beyond the configuration itself, as values: each names the variable it
 * is about and passes or fails with a message. The report prints them and decides the exit code.
 */
export interface CheckResult {
  readonly ok: boolean;
  /** "warn" results are printed but do not fail validation. */
  readonly warn?: boolean;
  readonly env: string;
  readonly message: string;
}

export const pass = (env: string, message: string): CheckResult => ({ ok: true, env, message });
export const fail = (env: string, message: string): CheckResult => ({ ok: false, env, message });
export const warn = (env: string, message: string): CheckResult => ({ ok: true, warn: true, env, message });

/** A configuration warning ("VAR, VAR2: text") as a check result. */
export function fromWarning(text: string): CheckResult {
  const colon = text.indexOf(': ');
  return colon === -1 ? warn('configuration', text) : warn(text.slice(0, colon), text.slice(colon + 2));
}

/** Binds `address` and releases it at once (port 0 is always bindable, so it is only resolved). */
export async function checkBindable(env: string, address: string): Promise<CheckResult> {
  const { host, port } = parseHostPort(address);
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, ipv6Only: false }, () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return pass(env, `${address} can be bound`);
  } catch (err) {
    return fail(env, `cannot listen on ${address} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
  }
}

/** The directory exists or can be made, and takes files (as the program does at start). */
export async function checkDirectory(env: string, dir: string): Promise<CheckResult> {
  try {
    await prepareDirectory(dir);
    return pass(env, `${dir} is a directory that takes files`);
  } catch (err) {
    return fail(env, errorMessage(err));
  }
}

/** A file the program will append to: its directory exists and is writable, and so is the file if present. */
export async function checkWritableFile(env: string, path: string): Promise<CheckResult> {
  try {
    const dir = dirname(path);
    if (!(await stat(dir)).isDirectory()) return fail(env, `${dir} is not a directory`);
    await access(dir, constants.W_OK);
    const existing = await stat(path).catch(() => undefined);
    if (existing !== undefined) {
      if (!existing.isFile()) return fail(env, `${path} exists and is not a regular file`);
      await access(path, constants.W_OK);
    }
    return pass(env, `${path} can be written`);
  } catch (err) {
    return fail(env, `${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
  }
}

export interface ValidateReport {
  readonly text: string;
  readonly ok: boolean;
}

/** The printed report: one line per check, then the effective configuration. */
export function formatReport(program: string, results: readonly CheckResult[], settings: string): ValidateReport {
  const lines = [`${program} validate`, '', '  ok    configuration: every variable is known and valid'];
  for (const r of results) lines.push(`  ${r.ok ? (r.warn === true ? 'warn' : 'ok  ') : 'FAIL'}  ${r.env}: ${r.message}`);
  const ok = results.every((r) => r.ok);
  lines.push('', 'Effective configuration (secrets redacted):', settings, '', ok ? 'Validated.' : 'Validation failed.');
  return { text: `${lines.join('\n')}\n`, ok };
}

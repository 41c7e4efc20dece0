import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Files that ship beside the compiled code (package.json, api/api.proto) are found by walking up from
 * this module, so the same code works from src/ (tests) and from dist/src/ (installed programs).
 */
export function findUp(relativePath: string): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, relativePath);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

/** The version in package.json, for --version. */
export function packageVersion(): string {
  const path = findUp('package.json');
  if (path === undefined) return 'unknown';
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
}

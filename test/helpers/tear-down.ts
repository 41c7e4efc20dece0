import { rmSync } from 'node:fs';

/** A started program of test/helpers (kill is SIGKILL and idempotent: an exited one is left alone). */
interface Killable {
  kill(): Promise<unknown>;
}

/**
 * The teardown of a test that ran real programs in a temporary directory: kills each program it
 * started, in the order given (collector before aggregator, so nothing is resent into a dying
 * aggregator), then removes `dir`. Programs of an earlier test are already gone and skipped.
 */
export async function killAndRemove(programs: readonly (Killable | undefined)[], dir: string | undefined): Promise<void> {
  for (const p of programs) await p?.kill();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}

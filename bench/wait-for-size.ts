/** Completion of a shipper's run as the benchmarks see it: its output file reached the corpus's size. */
import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Polls `path` every 10 ms (a stat: cheap beside the shippers) until it holds `bytes`. Throws after
 * `timeoutMs`, or as soon as `failure()` names a reason (e.g. a daemon exited).
 */
export async function waitForSize(path: string, bytes: number, timeoutMs: number, failure: () => string | undefined = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const size = sizeOf(path);
    if (size >= bytes) return;
    if (Date.now() > deadline) throw new Error(`${path}: ${size} of ${bytes} bytes after ${timeoutMs} ms`);
    const reason = failure();
    if (reason !== undefined) throw new Error(reason);
    await sleep(10);
  }
}

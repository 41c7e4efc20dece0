/**
 * The one polling wait of the test suites (integration, tools, chaos): calls `condition` until it returns
 * a truthy value and resolves with that value, or rejects after `timeoutMs` with an error naming `what`
 * (and the last error `condition` threw, if any). A condition that throws counts as "not yet", as in
 * vitest's `expect.poll`, so it may read a file that does not exist yet or assert with `expect`.
 *
 * `tryWaitFor` is the same wait resolving `false` at the deadline, for a test that then reports what it
 * got (lines lost, duplicated) before it asserts.
 *
 * Real time, for real processes, files and sockets: unit tests run in virtual time (ManualClock) and do
 * not poll.
 */
export interface WaitForOptions {
  /** How long to keep trying before failing. */
  readonly timeoutMs: number;
  /** What is awaited, for the timeout message: "the aggregator to write 100 lines". */
  readonly what: string;
  /** Pause between calls (default 50 ms). */
  readonly intervalMs?: number;
  /** Extra state for the timeout message (a screen, the last log lines). */
  readonly describe?: () => string;
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitForOptions): Promise<Truthy<T>> {
  const { timeoutMs, what, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as Truthy<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = options.describe === undefined ? '' : `\n${options.describe()}`;
      const last = lastError === undefined ? '' : `\nlast error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}${detail}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** As `waitFor`, but resolves whether the condition came true instead of rejecting at the deadline. */
export async function tryWaitFor(condition: () => unknown, options: WaitForOptions): Promise<boolean> {
  return waitFor(async () => Boolean(await condition()), options).then(
    () => true,
    () => false,
  );
}

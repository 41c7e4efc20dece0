/**
 * The time source the Aeron transport needs. src/aeron stands alone, so it declares its own interface;
 * the project's Clock (src/util/clock.ts) and ManualClock satisfy it structurally.
 */
export interface AeronTimerHandle {
  unref(): void;
}

export interface AeronClock {
  /** Milliseconds (may be fractional); only differences matter here. */
  now(): number;
  setTimeout(fn: () => void, ms: number): AeronTimerHandle;
  clearTimeout(handle: AeronTimerHandle): void;
}

/** Uniform in [0, 1). */
export type AeronRandom = () => number;

export const systemAeronClock: AeronClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A random int32 outside Aeron's reserved session-id range [-1, 1000] (§5.1). */
export function randomSessionId(random: AeronRandom): number {
  for (;;) {
    const id = (Math.floor(random() * 0x1_0000_0000) - 0x8000_0000) | 0;
    if (id < -1 || id > 1000) return id;
  }
}

export function randomInt32(random: AeronRandom): number {
  return (Math.floor(random() * 0x1_0000_0000) - 0x8000_0000) | 0;
}

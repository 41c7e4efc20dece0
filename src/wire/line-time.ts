const TWO_32 = 2 ** 32;

/**
 * A `time_unix_nano` as the two 32-bit halves of its fixed64, computed once (per read buffer) with
 * Number arithmetic: writing a BigInt per line allocated and cost a tenth of the collector's CPU.
 */
export class LineTime {
  private constructor(
    readonly lo: number,
    readonly hi: number,
  ) {}

  /** Whole milliseconds since the epoch (a fraction is dropped) as nanoseconds. */
  static fromMillis(ms: number): LineTime {
    const whole = Math.max(0, Math.floor(ms));
    const msLo = whole % TWO_32;
    const msHi = Math.floor(whole / TWO_32);
    // msLo * 1e6 < 2^52: exact in a double; its high part carries into the high half.
    const nsLo = msLo * 1_000_000;
    const lo = nsLo % TWO_32;
    const hi = (msHi * 1_000_000 + Math.floor(nsLo / TWO_32)) % TWO_32;
    return new LineTime(lo, hi);
  }

  static fromBigInt(t: bigint): LineTime {
    return new LineTime(Number(t & 0xffffffffn), Number((t >> 32n) & 0xffffffffn));
  }

  toBigInt(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }
}

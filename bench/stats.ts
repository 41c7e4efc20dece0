/** Medians and spreads of repeated benchmark runs (three interleaved runs are the rule, issue #12). */

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** "min–max" of the runs, to `digits` decimals. */
export function spread(values: readonly number[], digits: number): string {
  return `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
}

/** "median (min–max)". */
export function medianWithSpread(values: readonly number[], digits: number): string {
  return `${median(values).toFixed(digits)} (${spread(values, digits)})`;
}

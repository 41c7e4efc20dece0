/**
 * Byte sizes as operators write them: "1GiB", "64MiB", "512KiB", "1MB", "4096", "10k". Binary
 * suffixes (KiB, MiB, GiB, TiB) are powers of 1024; decimal ones (kB/KB, MB, GB, TB) powers of 1000;
 * a bare k/m/g/t is binary, as in Fluent Bit. Returns a whole number of bytes.
 */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  tb: 1000 ** 4,
};

export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (m === null) throw new Error(`invalid byte size "${text}": use e.g. 1048576, 512KiB, 64MiB, 1GiB`);
  const unit = UNITS[(m[2] as string).toLowerCase()];
  if (unit === undefined) throw new Error(`unknown unit "${m[2]}" in byte size "${text}": use B, KiB, MiB, GiB, TiB (or kB, MB, GB, TB)`);
  const value = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(value)) throw new Error(`byte size "${text}" is out of range`);
  return value;
}

export function formatByteSize(bytes: number): string {
  for (const [suffix, unit] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return `${bytes}B`;
}

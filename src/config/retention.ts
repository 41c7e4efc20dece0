import { parseByteSize } from './byte-size.js';
import { parseGoDuration } from './duration.js';

/** AGGREGATOR_SPOOL_RETENTION: delivered segments are kept until older than `maxAgeMs` or beyond `maxBytes` in all. */
export interface SpoolRetention {
  readonly maxAgeMs?: number;
  readonly maxBytes?: number;
}

const OFF = new Set(['off', 'none', '0']);

/**
 * "24h", "20GiB", or both ("24h,20GiB", either order); "off" (or "0", "none") for none. A part that
 * is a Go duration is an age (so "10m" is ten minutes); a size takes a byte unit (MiB, GB, ...).
 * Undefined means off.
 */
export function parseRetention(text: string): SpoolRetention | undefined {
  const v = text.trim();
  if (OFF.has(v.toLowerCase())) return undefined;
  const parts = v.split(',').map((p) => p.trim());
  if (parts.length > 2 || parts.some((p) => p === '')) {
    throw new Error(`expected a duration, a byte size or both ("24h", "20GiB", "24h,20GiB"), got "${text}"`);
  }
  let maxAgeMs: number | undefined;
  let maxBytes: number | undefined;
  for (const p of parts) {
    let age: number | undefined;
    try {
      age = parseGoDuration(p);
    } catch {
      age = undefined;
    }
    if (age !== undefined) {
      if (maxAgeMs !== undefined) throw new Error(`two durations in "${text}"`);
      if (age <= 0) throw new Error(`the age in "${text}" must be more than 0`);
      maxAgeMs = age;
      continue;
    }
    let size: number;
    try {
      size = parseByteSize(p);
    } catch {
      throw new Error(`"${p}" is neither a duration (24h, 90m) nor a byte size (20GiB, 500MB) in "${text}"`);
    }
    if (maxBytes !== undefined) throw new Error(`two byte sizes in "${text}"`);
    if (size <= 0) throw new Error(`the size in "${text}" must be more than 0`);
    maxBytes = size;
  }
  return { ...(maxAgeMs === undefined ? {} : { maxAgeMs }), ...(maxBytes === undefined ? {} : { maxBytes }) };
}

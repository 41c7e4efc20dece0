import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

/** One captured datagram of test/fixtures/aeron-vectors (see its README). */
export interface CapturedDatagram {
  readonly tUs: number;
  readonly dir: 'pub->sub' | 'sub->pub' | 'dropped';
  readonly type: number;
  readonly bytes: Buffer;
}

export const VECTOR_NAMES = ['basic', 'fragmented-with-nak', 'flow-control', 'term-rotation'] as const;
export type VectorName = (typeof VECTOR_NAMES)[number];

const here = dirname(fileURLToPath(import.meta.url));
/**
 * The captures are test fixtures inside the repository (recorded between two real Aeron C media drivers),
 * so a fresh clone's `npm test` needs nothing beside it; AERON_VECTORS_DIR points at another set.
 */
export const VECTORS_DIR = process.env.AERON_VECTORS_DIR ?? resolve(here, '../fixtures/aeron-vectors');

export function loadVector(name: VectorName): CapturedDatagram[] {
  const text = readFileSync(resolve(VECTORS_DIR, `c-driver-${name}.jsonl`), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const o = JSON.parse(l) as { t_us: number; dir: CapturedDatagram['dir']; type: number; len: number; hex: string };
      const bytes = Buffer.from(o.hex, 'hex');
      if (bytes.length !== o.len) throw new Error(`capture ${name}: len ${o.len} but ${bytes.length} bytes`);
      return { tUs: o.t_us, dir: o.dir, type: o.type, bytes };
    });
}

import { describe, expect, it } from 'vitest';
import type { FileCursor } from '../../src/collector/file-cursor.js';
import { EMPTY_EVIDENCE, FINGERPRINT_BYTES, HASH_WINDOW, extendPrefix, hashBefore, holdsEvidence } from '../../src/collector/file-identity.js';
import type { OffsetEvidence, ReadAt } from '../../src/collector/file-identity.js';
import { FileRegistry } from '../../src/collector/file-registry.js';
import type { Candidate, StatPath } from '../../src/collector/file-registry.js';

/**
 * The identity decisions on in-memory files (no disk): lines of one layout, the same first KiB, a
 * window of padding before the offset; copies seen while short or empty; a replacement renamed over
 * the path. Each file is a Buffer; a generation "read" to an offset carries the evidence the tailer
 * would have computed.
 */
const line = (tag: string, i: number): string => `${tag}-${String(i).padStart(8, '0')} ${'p'.repeat(100)}\n`;
const lines = (tag: string, from: number, n: number): string => Array.from({ length: n }, (_, k) => line(tag, from + k)).join('');
const BANNER = lines('banner', 0, 20);

const reader = (b: Buffer): ReadAt => (length, position) => Promise.resolve(Buffer.from(b.subarray(position, Math.min(b.length, position + length))));

function candidate(path: string, ino: number, content: Buffer | string): Candidate {
  const b = Buffer.from(content);
  return { path, dev: 1, ino, size: b.length, head: b.subarray(0, FINGERPRINT_BYTES), read: reader(b) };
}

/** The evidence a tailer computes for `content` read to `offset`. */
function evidence(content: Buffer, offset: number): OffsetEvidence {
  return { hash: hashBefore(content, offset), hashLength: Math.min(HASH_WINDOW, offset), prefix: extendPrefix({ length: 0, crc: 0 }, content, 0, offset, 0) };
}

/** A generation of `content` at `path`/`ino`, read to `offset` (as restored from its checkpoint). */
function readTo(reg: FileRegistry, path: string, ino: number, content: Buffer, offset: number): FileCursor {
  const cursor = reg.newCursor({ path, dev: 1, ino }, offset, evidence(content, offset));
  cursor.setHead(content.subarray(0, FINGERPRINT_BYTES));
  return cursor;
}

const noFiles: StatPath = () => Promise.resolve(undefined);

describe('identity decisions with equal line layouts', () => {
  const old = Buffer.from(BANNER + lines('gen1', 0, 500));
  const offset = old.length;

  it('the window before the checkpoint is all padding and the head is the banner: still not the same content', async () => {
    const regrown = Buffer.from(BANNER + lines('gen2', 0, 800));
    // What the old checks saw: the first KiB and the 64 bytes before the offset are equal.
    expect(regrown.subarray(0, FINGERPRINT_BYTES).equals(old.subarray(0, FINGERPRINT_BYTES))).toBe(true);
    expect(regrown.subarray(offset - 64, offset).equals(old.subarray(offset - 64, offset))).toBe(true);
    const reg = new FileRegistry(() => 0, noFiles);
    const cursor = readTo(reg, '/l/app.log', 7, old, offset);
    reg.retire(cursor);
    const d = await reg.decide(candidate('/l/app.log', 7, regrown), []);
    expect(d).toMatchObject({ kind: 'new', truncatedWhileAway: true, truncated: cursor });
    expect(cursor.truncated).toBe(true);
  });

  it('a change anywhere in the prefix fails the evidence, even one far from the window and the head', async () => {
    const changed = Buffer.from(old);
    changed.write('X', 5000);
    expect(await holdsEvidence(reader(changed), changed.length, offset, evidence(old, offset))).toBe(false);
    expect(await holdsEvidence(reader(old), old.length, offset, evidence(old, offset))).toBe(true);
    // Without a prefix hash (a checkpoint from an older version) only the window is compared.
    expect(await holdsEvidence(reader(changed), changed.length, offset, { ...evidence(old, offset), prefix: undefined })).toBe(true);
  });

  it('the same inode holding every byte read resumes at the checkpoint; appended lines are read from there', async () => {
    const reg = new FileRegistry(() => 0, noFiles);
    const cursor = readTo(reg, '/l/app.log', 7, old, offset);
    reg.retire(cursor);
    const grown = Buffer.concat([old, Buffer.from(lines('gen1', 500, 10))]);
    expect(await reg.decide(candidate('/l/app.log', 7, grown), [])).toEqual({ kind: 'resume', cursor, how: 'same-file' });
  });

  it('a replacement renamed over the path (new inode) holding the old bytes and more is a new file, not a copy', async () => {
    const reg = new FileRegistry(() => 0, noFiles);
    const cursor = readTo(reg, '/l/app.log', 7, old, offset);
    reg.retire(cursor);
    const replacement = Buffer.concat([old, Buffer.from(lines('gen2', 0, 10))]);
    expect(await reg.decide(candidate('/l/app.log', 8, replacement), [])).toEqual({ kind: 'new', truncatedWhileAway: false });
  });

  it('a copy of a truncated generation continues it from its offset under its file id', async () => {
    const reg = new FileRegistry(() => 0, noFiles);
    const cursor = readTo(reg, '/l/app.log', 7, old, offset - 1000);
    cursor.markTruncated();
    reg.retire(cursor);
    expect(await reg.decide(candidate('/l/app.log.1', 9, old), [])).toEqual({ kind: 'resume', cursor, how: 'copy' });
    expect(cursor.readOffset).toBe(offset - 1000);
  });

  it('a file with the same head but other bytes before the offset is not a copy of a truncated generation', async () => {
    const reg = new FileRegistry(() => 0, noFiles);
    const cursor = readTo(reg, '/l/app.log', 7, old, offset);
    cursor.markTruncated();
    reg.retire(cursor);
    const other = Buffer.from(BANNER + lines('gen3', 0, 600));
    expect(await reg.decide(candidate('/l/app.log.1', 9, other), [])).toEqual({ kind: 'new', truncatedWhileAway: false });
  });

  it('a copy seen while empty or short, and while longer, is parked while the original is tailed', async () => {
    const reg = new FileRegistry(() => 0, noFiles);
    const live = readTo(reg, '/l/app.log', 7, old, offset);
    const active = [{ cursor: live, read: reader(old) }];
    for (const n of [0, 10, 500, 5000, offset]) {
      expect(await reg.decide(candidate('/l/app.log.1', 9, old.subarray(0, n)), active)).toEqual({ kind: 'parked' });
    }
    // An empty file not named like a rotated copy is read at once (no event may come for it later).
    expect(await reg.decide(candidate('/l/other.log', 10, ''), active)).toEqual({ kind: 'new', truncatedWhileAway: false });
    // Once it differs from the original it is another file.
    const diverged = Buffer.concat([old.subarray(0, 5000), Buffer.from('something else\n')]);
    expect(await reg.decide(candidate('/l/other.log', 10, diverged), active)).toEqual({ kind: 'new', truncatedWhileAway: false });
  });

  it('a copy whose original was truncated but not noticed yet is parked (the truncation will claim it), not read as new', async () => {
    const reg = new FileRegistry(() => 0, noFiles);
    const live = readTo(reg, '/l/app.log', 7, old, offset);
    const truncatedOriginal = Buffer.from(lines('gen2', 0, 3));
    expect(await reg.decide(candidate('/l/app.log.1', 9, old), [{ cursor: live, read: reader(truncatedOriginal) }])).toEqual({ kind: 'parked' });
    // And when the truncation is noticed, the copy is claimed for the old generation.
    live.markTruncated();
    reg.retire(live);
    expect(await reg.claimCopy(candidate('/l/app.log.1', 9, old), live)).toBe(true);
    expect(live.ino).toBe(9);
    expect(live.readOffset).toBe(offset);
  });

  it('a copy shorter than a truncated generation\'s offset is covered (everything in it was read)', async () => {
    const reg = new FileRegistry(() => 0, noFiles);
    const cursor = readTo(reg, '/l/app.log', 7, old, offset);
    cursor.markTruncated();
    reg.retire(cursor);
    expect(await reg.decide(candidate('/l/app.log.1', 9, old.subarray(0, 9000)), [])).toEqual({ kind: 'covered' });
    expect(await reg.decide(candidate('/l/app.log.1', 9, old.subarray(0, 500)), [])).toEqual({ kind: 'covered' });
  });

  it('after a restart, a copy found before its original waits while the original is at its path; a copy of a deleted file is new', async () => {
    const original = { dev: 1, ino: 7, size: offset };
    const reg = new FileRegistry(() => 0, (p) => Promise.resolve(p === '/l/app.log' ? original : undefined));
    reg.restore([FileRegistry.toRecord(readTo(reg, '/l/app.log', 7, old, offset))]);
    expect(await reg.decide(candidate('/l/app.log.1', 9, old), [])).toEqual({ kind: 'parked' });
    const gone = new FileRegistry(() => 0, noFiles);
    gone.restore([FileRegistry.toRecord(readTo(gone, '/l/app.log', 7, old, offset))]);
    expect(await gone.decide(candidate('/l/app.log.1', 9, old), [])).toEqual({ kind: 'new', truncatedWhileAway: false });
  });

  it('checkpoint records carry the prefix hash and the truncated mark across a restart', () => {
    const reg = new FileRegistry(() => 0, noFiles);
    const cursor = readTo(reg, '/l/app.log', 7, old, offset);
    cursor.markTruncated();
    const rec = FileRegistry.toRecord(cursor);
    expect(rec.prefixLength).toBe(offset);
    expect(rec.truncated).toBe(true);
    const back = new FileRegistry(() => 0, noFiles);
    back.restore([rec]);
    const restored = back.retiredCursors[0] as FileCursor;
    expect(restored.readEvidence()).toEqual(evidence(old, offset));
    expect(restored.truncated).toBe(true);
    expect(EMPTY_EVIDENCE.prefix?.length).toBe(0);
  });
});

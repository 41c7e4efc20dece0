import { open, readdir, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createSegmentFile } from './group-commit.js';
import { SEGMENT_HEADER_BYTES, encodeSegmentHeader, segmentFileName } from './segment-format.js';
import { SegmentIndex, newSegment } from './segment-index.js';
import type { SegmentState } from './segment-index.js';
import { planRecovery } from './recovery-plan.js';
import type { TailRepair } from './recovery-plan.js';
import { readSpoolLayout } from './spool-layout.js';
import type { DeliveredPosition, SpoolLog } from './spool-types.js';

export interface Recovered {
  readonly index: SegmentIndex;
  /** The active (last) segment, open for appending. */
  readonly activeFh: FileHandle;
  readonly delivered: DeliveredPosition;
  readonly corruptRanges: number;
}

async function cutTail(dir: string, repair: TailRepair): Promise<void> {
  const w = await open(join(dir, segmentFileName(repair.segment)), 'r+');
  try {
    if (repair.rewriteHeader) {
      await w.truncate(0);
      await w.write(encodeSegmentHeader(repair.segment), 0, SEGMENT_HEADER_BYTES, 0);
    } else {
      await w.truncate(repair.to);
    }
    await w.datasync();
  } finally {
    await w.close();
  }
}

/**
 * Recovery on open (the caller holds the directory's lock): reads the layout, plans (recovery-plan.ts)
 * and carries the plan out: leftover temp files are deleted, and delivered segments too unless
 * `retain` (a retention policy is set), a torn tail is cut, the active segment is opened or created.
 */
export async function recover(dir: string, log: SpoolLog, retain: boolean): Promise<Recovered> {
  for (const n of await readdir(dir)) if (n.endsWith('.tmp')) await rm(join(dir, n), { force: true });
  const layout = await readSpoolLayout(dir);
  const plan = planRecovery(layout);
  const retained: SegmentState[] = [];
  for (const n of plan.remove) {
    const file = layout.segments.find((s) => s.number === n);
    if (retain && file !== undefined) {
      // Delivered, kept for replay: retention (delivery.ts) decides when it goes.
      retained.push({ ...newSegment(n, file.size), sealed: true, sealedAtMs: file.mtimeMs });
    } else {
      await rm(join(dir, segmentFileName(n)), { force: true });
    }
  }
  for (const note of plan.notes) log[note.level](note.obj, note.msg);
  if (plan.repair !== undefined) await cutTail(dir, plan.repair);
  const segments = [...retained, ...plan.segments];
  let activeFh: FileHandle;
  if (plan.create !== undefined) {
    activeFh = await createSegmentFile(dir, plan.create);
    segments.push(newSegment(plan.create, SEGMENT_HEADER_BYTES));
  } else {
    activeFh = await open(join(dir, segmentFileName((segments[segments.length - 1] as { number: number }).number)), 'r+');
  }
  return { index: new SegmentIndex(segments), activeFh, delivered: plan.delivered, corruptRanges: plan.corruptRanges };
}

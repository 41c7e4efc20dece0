import { errorMessage } from '../errors.js';
import { isErrno } from './durable-fs.js';

/**
 * Delivered space is always reclaimable, the active segment's included. Sealed segments are deleted
 * as soon as they are delivered; the segment being appended to is not, so on a volume that fills up
 * before the active segment reaches its roll size, a fully delivered active segment would hold the
 * volume forever (every append failing with ENOSPC). When space runs short and everything in the
 * active segment is delivered, the spool calls this: roll to a new segment (the old one is then sealed
 * and deleted like any delivered one); when not even a new segment's header fits, free the delivered
 * bytes in place first (truncate the active segment to its header), then roll.
 *
 * Crash safety: the truncated segment holds nothing undelivered. A delivered position persisted
 * earlier that points past its new end is clamped by recovery to the end; nothing before it is read
 * again because nothing is left there.
 */
export interface ActiveSegmentOps {
  /** Whether the active segment has records, all durable and all delivered (and no append is in flight). */
  activeFullyDelivered(): boolean;
  /** Seals the active segment and starts the next one; throws when it cannot create the file. */
  roll(): Promise<void>;
  /** Persists the delivered position now (errors are logged by it, not thrown). */
  persistDelivered(): Promise<void>;
  /** Marks the active segment as taking no more appends (the next write rolls first). */
  retireActive(): void;
  /** Truncates the active segment to its header and fsyncs it; adjusts the spool's accounting. */
  truncateActive(): Promise<void>;
  /** Samples the volume's free space again. */
  refreshFreeSpace(): Promise<void>;
  readonly log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  readonly dir: string;
}

function diskFull(err: unknown): boolean {
  return isErrno(err, 'ENOSPC') || isErrno(err, 'EDQUOT');
}

/** Never rejects: a failure is logged and the next shortage of space tries again. */
export async function reclaimActive(ops: ActiveSegmentOps): Promise<void> {
  if (!ops.activeFullyDelivered()) return;
  try {
    await ops.roll();
    ops.log.info({ dir: ops.dir }, 'spool: space is short and the active segment is fully delivered; rolled to a new segment to release it');
    return;
  } catch (err) {
    if (!diskFull(err)) {
      ops.log.error({ dir: ops.dir, err: errorMessage(err) }, 'spool: cannot roll to release a delivered active segment; will try again');
      return;
    }
  }
  try {
    ops.retireActive();
    await ops.persistDelivered();
    await ops.truncateActive();
    ops.log.warn({ dir: ops.dir }, 'spool: the volume is full; truncated the fully delivered active segment to release its space');
    await ops.refreshFreeSpace();
    await ops.roll();
  } catch (err) {
    // The active segment stays retired: the next append rolls first, or fails and tries again.
    ops.log.error({ dir: ops.dir, err: errorMessage(err) }, 'spool: cannot release the delivered active segment yet; will try again');
  }
  await ops.refreshFreeSpace();
}

import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Width of the record: "unconfirmed=<n>" padded with spaces, rewritten in place with one pwrite. */
const RECORD_BYTES = 40;
const PATTERN = /^unconfirmed=(\d+) *\n?$/;

/** The mark's file in `dir` for one publication (channel text and stream id). */
export function resendMarkPath(dir: string, channel: string, streamId: number): string {
  const digest = createHash('sha256').update(`${channel}\n${streamId}`).digest('hex').slice(0, 16);
  return join(dir, `aeron-unconfirmed-${digest}`);
}

/**
 * How many entries a publication sent that no receiver has confirmed yet, kept in a small file in the
 * spool directory so that the next aggregator process knows how many of the first entries it emits
 * are sent again (the spool kept them undelivered: duplicates downstream are possible and counted).
 *
 * The spool re-emits from its delivered position, in order, and the unconfirmed entries are exactly
 * the ones after it, so "the first `carried` entries this publication emits after a restart" are the
 * resent ones. The count is rewritten in place (one pwrite of 40 bytes, no fsync: it is a metric,
 * and kill -9 keeps written data) after each emit and each confirmation, so it is exact to within
 * the one batch being offered when the process died. A changed tagpass/tagdrop between the two runs
 * makes it approximate.
 */
export class ResendMark {
  /** Entries sent and unconfirmed when the previous process stopped, not yet met again. */
  private carried: number;
  private unconfirmed = 0;
  private fd: number | undefined;

  private constructor(fd: number, carried: number) {
    this.fd = fd;
    this.carried = carried;
  }

  /** Opens (or creates) the mark; `onUnreadable` hears of a file whose content is not a mark (counted as 0). */
  static open(path: string, onUnreadable?: (text: string) => void): ResendMark {
    const fd = openSync(path, 'a+');
    closeSync(fd);
    const rw = openSync(path, 'r+');
    const buf = Buffer.alloc(RECORD_BYTES);
    const n = readSync(rw, buf, 0, RECORD_BYTES, 0);
    const text = buf.toString('latin1', 0, n);
    const m = PATTERN.exec(text);
    if (m === null && n > 0) onUnreadable?.(text);
    const mark = new ResendMark(rw, m === null ? 0 : Number(m[1]));
    mark.write();
    return mark;
  }

  /** Entries sent before the restart still to be met again. */
  get pendingResends(): number {
    return this.carried;
  }

  /**
   * A batch of `entries` went out (offered into the publication): returns how many of them were
   * sent by the previous process already (resent), and counts them all as unconfirmed.
   */
  sent(entries: number): number {
    const resent = Math.min(this.carried, entries);
    this.carried -= resent;
    this.unconfirmed += entries;
    this.write();
    return resent;
  }

  /** A receiver confirmed `entries` of what was sent. */
  confirmed(entries: number): void {
    this.unconfirmed = Math.max(0, this.unconfirmed - entries);
    this.write();
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  /** What the next process will carry: this one's unconfirmed entries and the resends it has not met yet. */
  private write(): void {
    if (this.fd === undefined) return;
    const record = Buffer.from(`unconfirmed=${this.unconfirmed + this.carried}`.padEnd(RECORD_BYTES - 1, ' ') + '\n', 'latin1');
    writeSync(this.fd, record, 0, RECORD_BYTES, 0);
  }
}

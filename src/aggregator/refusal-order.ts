import { createHash } from 'node:crypto';

/** One chunk of a stream, from its arrival until its ack is written. */
export interface ChunkTicket {
  /** Arrival order within the stream. */
  readonly index: number;
  /** A chunk that arrived before this one was refused for lack of room: this one must not be stored. */
  behind: boolean;
}

/** The refused chunk a stream must resend before anything after it is taken. */
interface Refused {
  readonly index: number;
  readonly sequence: number;
  readonly bytes: number;
  readonly digest: Buffer;
}

function digestOf(entries: Buffer): Buffer {
  return createHash('sha1').update(entries).digest();
}

/**
 * Keeps one stream's records in the spool in stream order across RESOURCE_EXHAUSTED. Appends of a
 * stream run concurrently (they share group commits), so when chunk N is refused for lack of room, a
 * smaller chunk N+1 could still fit and be stored before N's resend: the file's lines would be out of
 * order. So once chunk N is refused, every chunk of the stream after it is refused too (those already
 * received, at the moment they would be stored, and those still to come) until N itself comes again
 * (the same bytes; the collector resends the refused chunk first, alone, see ship-client.ts). Then
 * the stream carries on, and the chunks refused behind N are resent after it, in order.
 */
export class RefusalOrder {
  private next = 0;
  private readonly pending: ChunkTicket[] = [];
  private refused: Refused | undefined;

  /** A chunk arrived. */
  arrive(): ChunkTicket {
    const t: ChunkTicket = { index: this.next++, behind: false };
    this.pending.push(t);
    return t;
  }

  /** Its ack is written (acks go out in arrival order). */
  settle(ticket: ChunkTicket): void {
    const i = this.pending.indexOf(ticket);
    if (i !== -1) this.pending.splice(i, 1);
  }

  /** The sequence of the refused chunk the stream waits for, if any. */
  get waitingFor(): number | undefined {
    return this.refused?.sequence;
  }

  /**
   * Whether a chunk just arrived may be taken (checked in arrival order, before it is stored): true
   * when no refused chunk is awaited, or when this is its resend (which ends the wait).
   */
  admits(entries: Buffer): boolean {
    const r = this.refused;
    if (r === undefined) return true;
    if (entries.length !== r.bytes || !digestOf(entries).equals(r.digest)) return false;
    this.refused = undefined;
    return true;
  }

  /** `ticket`'s chunk was refused for lack of room: everything after it waits for its resend. */
  refuse(ticket: ChunkTicket, sequence: number, entries: Buffer): void {
    for (const t of this.pending) if (t.index > ticket.index) t.behind = true;
    if (this.refused === undefined || this.refused.index > ticket.index) {
      this.refused = { index: ticket.index, sequence, bytes: entries.length, digest: digestOf(entries) };
    }
  }
}

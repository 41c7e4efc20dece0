import { isIP } from 'node:net';

/** Where a publication sends: a host (name or IP) and port, and the address it resolved to. */
export interface Destination {
  /** As configured (a DNS name or an IP literal); for a dynamic destination, the address it spoke from. */
  readonly host: string;
  readonly port: number;
  /** The IP datagrams go to; undefined until a name resolves. */
  address: string | undefined;
  /** The receiver id of the SMs that came from it, once seen. */
  receiverId: bigint | undefined;
  lastActivityMs: number;
}

/**
 * How a publication finds its receivers, as the C driver's aeron_udp_destination_tracker:
 * - `single`: the channel's endpoint (unicast or a multicast group); any SM counts as its activity.
 * - `manual` (multi-destination-cast, control-mode=manual): the configured destinations; an SM is
 *   matched to one by receiver id, or by source address until the id is known.
 * - `dynamic` (control-mode=dynamic): receivers announce themselves with SMs to the control address;
 *   an SM from an unknown receiver adds its source address, and a destination silent for the
 *   timeout is dropped.
 * A named destination (single or manual) silent for the timeout is due to be resolved again: a
 * receiver that moved to another address (a restarted pod, a changed DNS record) is found again, as
 * the C driver's re-resolution does.
 */
export class DestinationTracker {
  private readonly list: Destination[];
  /** The destinations datagrams go to now (those with an address); rebuilt on change, read per send. */
  targets: readonly Destination[] = [];

  constructor(
    readonly mode: 'single' | 'manual' | 'dynamic',
    private readonly timeoutMs: number,
    initial: ReadonlyArray<{ host: string; port: number }>,
    nowMs: number,
  ) {
    this.list = initial.map((d) => ({ host: d.host, port: d.port, address: isIP(d.host) !== 0 ? d.host : undefined, receiverId: undefined, lastActivityMs: nowMs }));
    this.rebuild();
  }

  get destinations(): readonly Destination[] {
    return this.list;
  }

  /** A status message from `address:port` with `receiverId`. */
  onStatusMessage(receiverId: bigint, address: string, port: number, nowMs: number): void {
    if (this.mode === 'single') {
      for (const d of this.list) d.lastActivityMs = nowMs;
      return;
    }
    const known =
      this.list.find((d) => d.receiverId === receiverId) ??
      this.list.find((d) => d.receiverId === undefined && d.address === address && d.port === port) ??
      // A restarted receiver comes back from the same address with a new id.
      this.list.find((d) => d.address === address && d.port === port);
    if (known !== undefined) {
      known.receiverId = receiverId;
      known.lastActivityMs = nowMs;
      return;
    }
    if (this.mode === 'dynamic') {
      this.list.push({ host: address, port, address, receiverId, lastActivityMs: nowMs });
      this.rebuild();
    }
  }

  /** No status message from `d` for longer than the timeout (or since it was last resolved). */
  silent(d: Destination, nowMs: number): boolean {
    return nowMs - d.lastActivityMs > this.timeoutMs;
  }

  /** Dynamic mode: drops destinations silent for the timeout. Returns how many were dropped. */
  expire(nowMs: number): number {
    if (this.mode !== 'dynamic') return 0;
    const before = this.list.length;
    for (let i = this.list.length - 1; i >= 0; i--) {
      if (nowMs - (this.list[i] as Destination).lastActivityMs > this.timeoutMs) this.list.splice(i, 1);
    }
    if (this.list.length !== before) this.rebuild();
    return before - this.list.length;
  }

  /**
   * Named destinations to resolve now: never resolved, or silent for the timeout (then again at most
   * once per timeout). Each returned destination counts as active from now.
   */
  dueForResolution(nowMs: number): Destination[] {
    if (this.mode === 'dynamic') return [];
    const due: Destination[] = [];
    for (const d of this.list) {
      if (isIP(d.host) !== 0) continue;
      if (d.address === undefined || nowMs - d.lastActivityMs > this.timeoutMs) {
        d.lastActivityMs = nowMs;
        due.push(d);
      }
    }
    return due;
  }

  /** A name resolved (again) to `address`. */
  resolved(d: Destination, address: string): void {
    if (d.address === address) return;
    d.address = address;
    d.receiverId = undefined;
    this.rebuild();
  }

  private rebuild(): void {
    this.targets = this.list.filter((d) => d.address !== undefined);
  }
}

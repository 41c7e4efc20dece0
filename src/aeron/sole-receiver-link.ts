/** What the link needs of a dgram socket (node:dgram's Socket has all of it). */
export interface LinkSocket {
  connect(port: number, address: string): void;
  disconnect(): void;
  /** Throws while not connected (node:dgram: ERR_SOCKET_DGRAM_NOT_CONNECTED). */
  remoteAddress(): { address: string; port: number };
  send(msg: Buffer, port?: number, address?: string): void;
}

/** A receiver's address as the link compares it. */
export interface LinkTarget {
  readonly address: string | undefined;
  readonly port: number;
}

/**
 * A unicast publication's socket connected to its one receiver while that receiver answers.
 *
 * An unconnected UDP socket makes the kernel look up the route and check the address on every
 * datagram, and node's dgram validates a port and an address per send; a connected one does neither
 * (measured against `aeronmd`: about 5 % less CPU per message in our publication, interleaved
 * with the unconnected socket, 2026-11-30, bench/README.md). But a connected socket also hears only its peer, and a receiver may answer from
 * another address than the one we send to (a wildcard-bound receiver on a multi-homed host), as the
 * C sender, which stays unconnected, tolerates. So the link connects only once a status message came
 * from exactly the address and port the data goes to, and disconnects when that receiver falls silent
 * or the destination resolves to another address, so that any answer is heard again.
 * Multicast and multi-destination-cast publications never connect (several receivers).
 */
export class SoleReceiverLink {
  private peer: LinkTarget | undefined;
  /** How many times the socket was connected (a metric for tests and diagnosis). */
  connects = 0;

  constructor(
    private readonly socket: LinkSocket,
    private readonly enabled: boolean,
  ) {}

  get connected(): boolean {
    return this.peer !== undefined;
  }

  /** Sends one datagram to every target (to the peer alone while connected). */
  send(d: Buffer, targets: readonly LinkTarget[]): void {
    if (this.peer !== undefined) {
      this.socket.send(d);
      return;
    }
    for (const t of targets) this.socket.send(d, t.port, t.address);
  }

  /** A status message arrived from `address:port`; `targets` are where data goes now. */
  onStatusMessage(address: string, port: number, targets: readonly LinkTarget[]): void {
    if (!this.enabled || this.peer !== undefined || targets.length !== 1) return;
    const t = targets[0] as LinkTarget;
    if (t.address !== address || t.port !== port) return;
    try {
      // With an IP literal, node:dgram connects synchronously (our lookup answers at once); a
      // refused connect leaves the socket unconnected, which remoteAddress() then says by throwing.
      this.socket.connect(port, address);
      this.socket.remoteAddress();
    } catch {
      return; // Stays unconnected: sends go with an address, as before.
    }
    this.peer = { address, port };
    this.connects++;
  }

  /** Each duty cycle: disconnect when the receiver fell silent or the target moved. */
  check(receiverLive: boolean, targets: readonly LinkTarget[]): void {
    const peer = this.peer;
    if (peer === undefined) return;
    const t = targets.length === 1 ? targets[0] : undefined;
    if (receiverLive && t !== undefined && t.address === peer.address && t.port === peer.port) return;
    this.release();
  }

  /** Back to an unconnected socket. */
  release(): void {
    if (this.peer === undefined) return;
    this.peer = undefined;
    try {
      this.socket.disconnect();
    } catch {
      // Not connected after all (a failed connect the socket reported later): nothing to undo.
    }
  }
}

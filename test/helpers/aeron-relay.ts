import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket } from 'node:dgram';


export interface RelayOptions {
  /** Where the receiver listens. */
  readonly targetPort: number;
  readonly random: () => number;
  readonly dropRate?: number;
  readonly duplicateRate?: number;
  readonly reorderRate?: number;
}

/**
 * A UDP relay between a publication and a receiver on 127.0.0.1: the publication sends to `port`;
 * DATA datagrams towards the receiver are dropped, duplicated or held back behind the next one
 * (reordered) at the given rates; everything else, and all control frames back, pass untouched.
 */
export class AeronRelay {
  readonly counts = { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0, control: 0 };
  private publisher: RemoteInfo | undefined;
  private held: Buffer | undefined;

  private constructor(
    private readonly front: Socket,
    private readonly back: Socket,
    private readonly o: RelayOptions,
  ) {
    front.on('message', (msg, rinfo) => this.fromPublisher(msg, rinfo));
    back.on('message', (msg) => {
      if (this.publisher === undefined) return;
      this.counts.control++;
      front.send(msg, this.publisher.port, this.publisher.address);
    });
  }

  static async open(o: RelayOptions): Promise<AeronRelay> {
    const bind = async (): Promise<Socket> => {
      const s = createSocket('udp4');
      s.on('error', () => undefined);
      await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
      return s;
    };
    return new AeronRelay(await bind(), await bind(), o);
  }

  get port(): number {
    return this.front.address().port;
  }

  private toReceiver(msg: Buffer): void {
    this.counts.forwarded++;
    this.back.send(msg, this.o.targetPort, '127.0.0.1');
  }

  private fromPublisher(msg: Buffer, rinfo: RemoteInfo): void {
    this.publisher = rinfo;
    const type = msg.length >= 8 ? msg.readInt16LE(6) : -1;
    const isData = (type === 0 || type === 1) && msg.length > 32;
    if (!isData) {
      this.toReceiver(msg);
      return;
    }
    const r = this.o.random();
    const drop = this.o.dropRate ?? 0;
    const dup = this.o.duplicateRate ?? 0;
    const reorder = this.o.reorderRate ?? 0;
    if (r < drop) {
      this.counts.dropped++;
      return;
    }
    if (r < drop + reorder && this.held === undefined) {
      this.counts.reordered++;
      this.held = msg;
      return;
    }
    this.toReceiver(msg);
    if (r < drop + reorder + dup) {
      this.counts.duplicated++;
      this.toReceiver(msg);
    }
    if (this.held !== undefined) {
      const h = this.held;
      this.held = undefined;
      this.toReceiver(h);
    }
  }

  close(): void {
    this.front.close();
    this.back.close();
  }
}

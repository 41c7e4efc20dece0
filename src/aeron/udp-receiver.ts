import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { systemAeronClock } from './aeron-clock.js';
import type { AeronClock, AeronRandom, AeronTimerHandle } from './aeron-clock.js';
import { AeronChannelError, parseUdpChannel } from './channel-uri.js';
import type { UdpChannel } from './channel-uri.js';
import { Receiver } from './receiver.js';
import type { ReceiverParams } from './receiver.js';

export interface UdpReceiverOptions extends Omit<ReceiverParams, 'send' | 'receiverId'> {
  /** The subscription channel: the receiver binds to its endpoint host:port. */
  readonly channel: string | UdpChannel;
  readonly clock?: AeronClock;
  readonly random?: AeronRandom;
  readonly receiverId?: bigint;
  /** Duty-cycle period: NAK retries, SMs, liveness (the NAK delay is effectively this). */
  readonly dutyCycleMs?: number;
  readonly socketBufferBytes?: number;
}

/**
 * A pure-TypeScript Aeron subscription endpoint on a real UDP socket, for tests, the benchmark and
 * the aeron-receiver CLI. It answers from the bound socket, as the C receiver does.
 */
export class UdpReceiver {
  readonly receiver: Receiver;
  readonly channel: UdpChannel;
  private timer: AeronTimerHandle | undefined;

  private constructor(
    private readonly socket: Socket,
    channel: UdpChannel,
    receiver: Receiver,
    private readonly clock: AeronClock,
    private readonly dutyCycleMs: number,
    private readonly state: { closed: boolean },
  ) {
    this.channel = channel;
    this.receiver = receiver;
  }

  static async open(o: UdpReceiverOptions): Promise<UdpReceiver> {
    const channel = typeof o.channel === 'string' ? parseUdpChannel(o.channel, { allowPortZero: true }) : o.channel;
    if (channel.mdc !== undefined) throw new AeronChannelError('a receiver listens on endpoint=host:port; control-mode= is for publications');
    const clock = o.clock ?? systemAeronClock;
    const random = o.random ?? Math.random;
    const receiverId = o.receiverId ?? BigInt.asIntN(64, (BigInt(Math.floor(random() * 0x1_0000_0000)) << 32n) | BigInt(Math.floor(random() * 0x1_0000_0000)));
    const socket = createSocket({ type: isIPv6(channel.host) ? 'udp6' : 'udp4' });
    socket.on('error', () => undefined); // send errors to a vanished publisher are expected; it re-SETUPs
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(channel.port, channel.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.setRecvBufferSize(o.socketBufferBytes ?? 4 * 1024 * 1024);
    } catch {
      // capped by net.core.rmem_max: losses are then recovered by NAKs
    }
    const state = { closed: false };
    const receiver = new Receiver({
      ...o,
      receiverId,
      // A message handler may close the receiver in the middle of a datagram: send nothing after.
      send: (d, to) => {
        if (!state.closed) socket.send(d, to.port, to.address);
      },
    });
    const r = new UdpReceiver(socket, channel, receiver, clock, o.dutyCycleMs ?? 2, state);
    socket.on('message', (msg, rinfo) => {
      if (!state.closed) receiver.onDatagram(msg, msg.length, rinfo, clock.now());
    });
    r.tick();
    return r;
  }

  get port(): number {
    return this.socket.address().port;
  }

  private tick(): void {
    if (this.state.closed) return;
    this.receiver.doWork(this.clock.now());
    this.timer = this.clock.setTimeout(() => this.tick(), this.dutyCycleMs);
  }

  /** Stops at once: no EOS, as a killed process would (the publisher notices by SM silence). */
  close(): Promise<void> {
    if (this.state.closed) return Promise.resolve();
    this.state.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

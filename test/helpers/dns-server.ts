import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';

/**
 * A real DNS server on a loopback UDP port (RFC 1035 wire format) answering A queries from a table the
 * test changes while it runs, as a Kubernetes headless Service's answer changes as pods come and go.
 * AAAA queries get an empty NOERROR answer, unknown names NXDOMAIN. The collector asks it through
 * COLLECTOR_DNS_SERVERS: no root, no /etc/hosts edit, works in a fresh CI container.
 */
export interface TestDnsServer {
  /** "127.0.0.1:<port>" */
  readonly address: string;
  /** The A records of `name` from now on (TTL 0). */
  set(name: string, ips: readonly string[]): void;
  /** Queries answered so far, by name. */
  queries(name: string): number;
  close(): Promise<void>;
}

function readName(msg: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = start;
  while (i < msg.length) {
    const len = msg[i] as number;
    if (len === 0) return { name: labels.join('.').toLowerCase(), end: i + 1 };
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('ascii'));
    i += 1 + len;
  }
  throw new Error('truncated name');
}

export async function startDnsServer(): Promise<TestDnsServer> {
  const table = new Map<string, readonly string[]>();
  const counts = new Map<string, number>();
  const socket = createSocket('udp4');
  socket.on('message', (msg, peer) => {
    if (msg.length < 12) return;
    let question;
    try {
      question = readName(msg, 12);
    } catch {
      return;
    }
    const qtype = msg.readUInt16BE(question.end);
    const questionBytes = msg.subarray(12, question.end + 4);
    counts.set(question.name, (counts.get(question.name) ?? 0) + 1);
    const ips = table.get(question.name);
    const answers = ips !== undefined && qtype === 1 ? ips : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0);
    // QR, AA, RD copied, RA; rcode NXDOMAIN for unknown names.
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | 0x0080 | (ips === undefined ? 3 : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const records = answers.map((ip) => {
      const r = Buffer.alloc(16);
      r.writeUInt16BE(0xc00c, 0); // pointer to the question's name
      r.writeUInt16BE(1, 2); // A
      r.writeUInt16BE(1, 4); // IN
      r.writeUInt32BE(0, 6); // TTL 0: ask again every time
      r.writeUInt16BE(4, 10);
      ip.split('.').forEach((octet, i) => r.writeUInt8(Number(octet), 12 + i));
      return r;
    });
    socket.send(Buffer.concat([header, questionBytes, ...records]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    set: (name, ips) => table.set(name.toLowerCase(), [...ips]),
    queries: (name) => counts.get(name.toLowerCase()) ?? 0,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

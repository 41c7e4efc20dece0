import * as grpc from '@grpc/grpc-js';
import { EntryBatchWriter, RunHead, encodeBatchHeader } from '../../src/wire/entry-batch.js';
import type { Tag } from '../../src/wire/entry-batch.js';
import { loadIngestApi } from '../../src/wire/grpc-api.js';
import type { AckMessage, ChunkMessage } from '../../src/wire/grpc-api.js';

/**
 * A small real gRPC client of Ingest.Ship for tests: opens a stream, sends chunks, collects acks.
 */
export interface ClientTls {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface IngestStream {
  readonly acks: AckMessage[];
  /** Sends a chunk; `entryCount` defaults to the writer's count (tests override it to lie). */
  send(chunk: { sequence: number; entries: Buffer; entryCount: number }): void;
  /** Resolves when `n` acks in total have arrived (rejects when the stream fails first). */
  waitForAcks(n: number, timeoutMs?: number): Promise<AckMessage[]>;
  /** Half-closes and resolves when the server ends the stream. */
  finish(): Promise<void>;
  cancel(): void;
  /** Resolves with the stream's final status. */
  readonly status: Promise<grpc.StatusObject>;
}

export interface IngestClient {
  open(): IngestStream;
  /** Waits until the channel is connected (for TLS tests: rejects when the handshake fails). */
  waitForReady(timeoutMs?: number): Promise<void>;
  close(): void;
}

export function createIngestClient(address: string, tls?: ClientTls): IngestClient {
  const { Client } = loadIngestApi();
  const creds =
    tls === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null);
  const client = new Client(address, creds, {
    'grpc.max_send_message_length': 256 * 1024 * 1024,
    // Tests dial 127.0.0.1; the server certificate also names localhost, and SNI must not carry an IP.
    ...(tls === undefined ? {} : { 'grpc.ssl_target_name_override': 'localhost' }),
  }) as unknown as grpc.Client & {
    ship(): grpc.ClientDuplexStream<ChunkMessage, AckMessage>;
  };
  return {
    open(): IngestStream {
      const call = client.ship();
      const acks: AckMessage[] = [];
      const waiters: Array<{ n: number; resolve: (a: AckMessage[]) => void; reject: (e: Error) => void }> = [];
      let failure: Error | undefined;
      const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      call.on('data', (ack: AckMessage) => {
        acks.push(ack);
        for (const w of [...waiters]) {
          if (acks.length >= w.n) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(acks.slice());
          }
        }
      });
      call.on('error', (err: Error) => {
        failure = err;
        for (const w of waiters.splice(0)) w.reject(err);
      });
      const ended = new Promise<void>((resolve) => {
        call.on('end', resolve);
        call.on('error', () => resolve());
      });
      return {
        acks,
        send: (chunk) => {
          call.write(chunk);
        },
        waitForAcks: (n, timeoutMs = 20_000) =>
          new Promise((resolve, reject) => {
            if (acks.length >= n) {
              resolve(acks.slice());
              return;
            }
            if (failure !== undefined) {
              reject(failure);
              return;
            }
            const timer = setTimeout(() => reject(new Error(`only ${acks.length} of ${n} acks within ${timeoutMs} ms`)), timeoutMs);
            waiters.push({
              n,
              resolve: (a) => {
                clearTimeout(timer);
                resolve(a);
              },
              reject: (e) => {
                clearTimeout(timer);
                reject(e);
              },
            });
          }),
        finish: async () => {
          call.end();
          await ended;
        },
        cancel: () => call.cancel(),
        status,
      };
    },
    waitForReady: (timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve()));
      }),
    close: () => client.close(),
  };
}

export interface TestLine {
  readonly data: Buffer;
  readonly path?: string;
  readonly fileId?: string;
  readonly offset?: number;
  readonly timeUnixNano?: bigint;
}

/**
 * Where the next line of each (collector, path, file id) starts when a test gives no offset: a
 * collector's lines of one file have distinct, ascending offsets across its chunks, and the aggregator
 * acknowledges a line whose identity it already holds without storing it again (exactly-once), so
 * default offsets continue from one call to the next instead of restarting at 0.
 */
const nextDefaultOffset = new Map<string, number>();

/** Encodes lines as one EntryBatch (as a collector would), returning the chunk payload and its count. */
export function buildEntries(
  lines: readonly TestLine[],
  opts: { collectorId?: string; tags?: readonly Tag[] } = {},
): { entries: Buffer; entryCount: number } {
  const writer = new EntryBatchWriter(encodeBatchHeader(opts.collectorId ?? 'test-collector', opts.tags ?? [{ key: 'host', value: 'test' }]));
  const heads = new Map<string, RunHead>();
  const collectorId = opts.collectorId ?? 'test-collector';
  for (const l of lines) {
    const path = l.path ?? '/var/log/test.log';
    const fileId = l.fileId ?? 'file-1';
    const key = `${path}\u0000${fileId}`;
    let head = heads.get(key);
    if (head === undefined) {
      head = new RunHead(path, fileId);
      heads.set(key, head);
    }
    const fileKey = `${collectorId}\u0000${key}`;
    const offset = l.offset ?? nextDefaultOffset.get(fileKey) ?? 0;
    if (l.offset === undefined) nextDefaultOffset.set(fileKey, offset + l.data.length + 1);
    writer.addLine(head, l.data, 0, l.data.length, offset, l.timeUnixNano ?? 1_700_000_000_000_000_000n);
  }
  const entryCount = writer.entryCount;
  return { entries: writer.finish(), entryCount };
}

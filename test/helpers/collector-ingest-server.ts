import * as grpc from '@grpc/grpc-js';
import { AckCode, loadIngestApi } from '../../src/wire/grpc-api.js';
import type { AckMessage, ChunkMessage } from '../../src/wire/grpc-api.js';
import { CONSERVATIVE_LIMITS, writeLimits } from '../../src/wire/ingest-limits.js';
import type { IngestLimits } from '../../src/wire/ingest-limits.js';

/**
 * A real gRPC Ingest server on 127.0.0.1 (port 0 or a given port) whose answers a test scripts, to
 * exercise the collector's shipping client against refusals and broken streams. The real aggregator
 * is used by the integration tests; this one exists to make rare answers happen on demand.
 */
export interface ReceivedChunk {
  readonly stream: number;
  readonly sequence: number;
  readonly entries: Buffer;
  readonly entryCount: number;
}

/** What to do with a chunk: answer with a code, or end the stream without answering. */
export type Reply = { readonly code: AckCode; readonly retryAfterMs?: number; readonly message?: string } | 'end-stream';

export class ScriptedIngestServer {
  readonly received: ReceivedChunk[] = [];
  reply: (chunk: ReceivedChunk, index: number) => Reply = () => ({ code: AckCode.OK });
  /** Limits sent in the response headers as a stream opens (undefined: none, like an older aggregator). */
  advertise: IngestLimits | undefined = CONSERVATIVE_LIMITS;
  private server: grpc.Server | undefined;
  private streams = 0;
  port = 0;

  async start(port = 0): Promise<number> {
    const server = new grpc.Server();
    server.addService(loadIngestApi().service, {
      Ship: (call: grpc.ServerDuplexStream<ChunkMessage, AckMessage>) => {
        const stream = ++this.streams;
        if (this.advertise !== undefined) call.sendMetadata(writeLimits(new grpc.Metadata(), this.advertise));
        call.on('data', (m: ChunkMessage) => {
          const chunk = { stream, sequence: Number(m.sequence), entries: m.entries, entryCount: m.entryCount };
          this.received.push(chunk);
          const r = this.reply(chunk, this.received.length - 1);
          if (r === 'end-stream') {
            call.end();
            return;
          }
          call.write({ sequence: chunk.sequence, code: r.code, message: r.message ?? '', retryAfterMs: r.retryAfterMs ?? 0 });
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
    });
    this.port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    this.server = server;
    return this.port;
  }

  get streamCount(): number {
    return this.streams;
  }

  stop(): void {
    this.server?.forceShutdown();
    this.server = undefined;
  }
}

import * as grpc from '@grpc/grpc-js';
import { HealthService } from './health-service.js';
import { parseHostPort } from '../config/address.js';
import type { TlsMaterial } from '../config/aggregator-config.js';
import { loadIngestApi } from '../wire/grpc-api.js';
import type { AggregatorMetrics } from '../telemetry/aggregator-metrics.js';
import { guardCompressedFlag } from './grpc-compression-guard.js';
import { applyIngestHttp2Settings } from './grpc-http2-settings.js';
import { listenGrpc } from './grpc-listener.js';
import type { HandshakeFailure } from './grpc-listener.js';
import type { IngestService } from './ingest-service.js';

export const INGEST_SERVICE_NAME = 'megacollector.v1.Ingest';

export interface GrpcServerOptions {
  readonly address: string;
  readonly tls: TlsMaterial | null;
  readonly ingest: IngestService;
  /** Largest Chunk.entries accepted by admission; gRPC's own message limit sits above it so an oversized chunk gets an INVALID_ARGUMENT ack instead of a broken stream. */
  readonly maxChunkBytes: number;
  /** Counts messages refused before decoding. */
  readonly metrics?: AggregatorMetrics;
  /** Called for every refused TLS handshake (see grpc-listener.ts). */
  readonly onHandshakeFailure?: (failure: HandshakeFailure) => void;
  /** Told when grpc-js's HTTP/2 servers cannot be given the ingest windows (grpc-http2-settings.ts). */
  readonly onDefaultHttp2Settings?: () => void;
}

/**
 * The Ingest service definition with a request deserializer that counts what it cannot decode (grpc-js
 * then ends the call with INTERNAL): a refusal the metrics see, not only the client.
 */
function countingService(service: grpc.ServiceDefinition, metrics: AggregatorMetrics | undefined): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, def] of Object.entries(service)) {
    const inner = def.requestDeserialize;
    out[name] = {
      ...def,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return inner(bytes);
        } catch (err) {
          metrics?.messagesUndecodable.inc({ reason: 'not_a_chunk' });
          throw err;
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

export interface RunningGrpcServer {
  readonly port: number;
  readonly health: HealthService;
  /** Stops accepting new streams; lets open streams finish for up to `graceMs`, then cuts them. */
  shutdown(graceMs: number): Promise<void>;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const maxMessage = Math.min(2 ** 31 - 1, options.maxChunkBytes * 2 + 1024 * 1024);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxMessage,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    // Collectors keep one long-lived stream; let them ping it to detect dead peers.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
  });
  const api = loadIngestApi();
  server.addService(countingService(api.service, options.metrics), { ship: options.ingest.ship });
  const unguard = guardCompressedFlag(() => options.metrics?.messagesUndecodable.inc({ reason: 'compressed_without_encoding' }));
  const health = new HealthService({ '': 'SERVING', [INGEST_SERVICE_NAME]: 'SERVING' });
  health.addToServer(server);
  // We own the socket listener and terminate TLS ourselves (grpc-listener.ts), so refused handshakes
  // are seen; grpc-js serves the accepted, already decrypted connections.
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  if (!applyIngestHttp2Settings(server)) options.onDefaultHttp2Settings?.();
  const listener = await listenGrpc({
    ...parseHostPort(options.address),
    tls: options.tls,
    onConnection: (socket) => injector.injectConnection(socket),
    onHandshakeFailure: options.onHandshakeFailure,
  });
  const port = listener.port;
  return {
    port,
    health,
    shutdown: (graceMs) =>
      new Promise<void>((resolve) => {
        unguard();
        health.setStatus('', 'NOT_SERVING');
        health.setStatus(INGEST_SERVICE_NAME, 'NOT_SERVING');
        void listener.close();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

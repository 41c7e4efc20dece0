import * as grpc from '@grpc/grpc-js';
import { parseHostPort } from '../config/address.js';
import { GRPC_FRAME_PREFIX, encodeChunkMessage } from '../wire/chunk-message.js';
import type { OutgoingChunk } from '../wire/chunk-message.js';
import { loadIngestApi } from '../wire/grpc-api.js';
import type { AckMessage } from '../wire/grpc-api.js';
import type { AggregatorTarget } from './aggregator-pool.js';
import { frameInPlace } from './grpc-frame-in-place.js';

/**
 * The gRPC side of reaching one aggregator: the channel credentials (TLS, mTLS or plaintext) and one
 * Ingest client per dialed address. An address found through a DNS name is dialed as an IP, so TLS
 * verifies the aggregator's certificate against the configured name (its SAN), not the IP.
 */
export interface ShipTls {
  readonly caCertificate: Buffer | undefined;
  readonly key: Buffer | undefined;
  readonly certificate: Buffer | undefined;
}

export type ShipCall = grpc.ClientDuplexStream<OutgoingChunk, AckMessage>;
export type IngestClient = grpc.Client & { Ship(): ShipCall };

/** Plaintext when `tls` is undefined; mTLS when it carries a key and certificate. */
export function shipCredentials(tls: ShipTls | undefined): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls.caCertificate ?? null, tls.key ?? null, tls.certificate ?? null);
}

export interface ChannelOptions {
  readonly credentials: grpc.ChannelCredentials;
  readonly tls: boolean;
  readonly initialReconnectMs: number;
  readonly maxReconnectMs: number;
}

let shipClient: grpc.ServiceClientConstructor | undefined;

/**
 * The Ingest client, with Ship's request serializer replaced by encodeChunkMessage: the same bytes
 * as protobufjs's, written around the chunk's EntryBatch in its own buffer instead of copied; and
 * framed there too (grpc-frame-in-place.ts) instead of copied by grpc-js.
 */
export function serializeChunk(msg: OutgoingChunk): Buffer {
  const out = encodeChunkMessage(msg);
  const b = msg.backing;
  // Written in place: inside the chunk's buffer with the prefix's room before it. (Sharing the
  // ArrayBuffer is not enough: a small backing and a copy can both come from Buffer's pool.)
  const inPlace = b !== undefined && out.buffer === b.buffer && out.byteOffset - GRPC_FRAME_PREFIX >= b.byteOffset && out.byteOffset + out.length <= b.byteOffset + b.length;
  return inPlace ? frameInPlace(out) : out;
}

function ingestClientConstructor(): grpc.ServiceClientConstructor {
  if (shipClient !== undefined) return shipClient;
  const { service } = loadIngestApi();
  const ship = service.Ship as grpc.MethodDefinition<OutgoingChunk, AckMessage>;
  shipClient = grpc.makeGenericClientConstructor({ ...service, Ship: { ...ship, requestSerialize: serializeChunk } }, 'Ingest');
  return shipClient;
}

export function makeIngestClient(target: AggregatorTarget, options: ChannelOptions): IngestClient {
  const Client = ingestClientConstructor();
  const { host, port } = parseHostPort(target.address);
  const named = options.tls && target.host !== host ? { 'grpc.ssl_target_name_override': target.host, 'grpc.default_authority': `${target.host}:${port}` } : {};
  return new Client(target.address, options.credentials, {
    // The channel's own reconnect backoff would otherwise grow to 2 minutes while the aggregator is away.
    'grpc.initial_reconnect_backoff_ms': options.initialReconnectMs,
    'grpc.max_reconnect_backoff_ms': options.maxReconnectMs,
    // An aggregator that stops answering (frozen, cut off) is noticed within ~15 s, then failed over.
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.enable_retries': 0,
    ...named,
  }) as unknown as IngestClient;
}

/** Resolves true when a connection to the address is up within `timeoutMs` (the client is closed after). */
export function probeAggregator(target: AggregatorTarget, options: ChannelOptions, timeoutMs: number): Promise<boolean> {
  const client = makeIngestClient(target, options);
  return new Promise((resolve) => {
    client.waitForReady(Date.now() + timeoutMs, (err) => {
      client.close();
      resolve(err === undefined);
    });
  });
}

import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { findUp } from '../util/package-info.js';
import { decodeAck, decodeChunk, encodeAck, encodeChunk } from './ingest-codec.js';
import type { AckMessage, ChunkMessage } from './ingest-codec.js';

/**
 * The gRPC contract of api/api.proto: the Ingest service with its two messages encoded by hand
 * (ingest-codec.ts), so neither program parses the .proto at start. The .proto stays the contract
 * (tests read it with protobufjs and compare); it is found by walking up from this module.
 */

export { AckCode } from './ingest-codec.js';
export type { AckMessage, ChunkMessage } from './ingest-codec.js';

export function findApiProto(): string {
  const path = findUp(join('api', 'api.proto'));
  if (path === undefined) throw new Error('api/api.proto not found next to the installed program');
  return path;
}

export interface IngestApi {
  /** Service definition for grpc.Server#addService. */
  readonly service: grpc.ServiceDefinition;
  /** Client constructor for the Ingest service. */
  readonly Client: grpc.ServiceClientConstructor;
}

export const SHIP_METHOD = '/megacollector.v1.Ingest/Ship';

let cached: IngestApi | undefined;

export function loadIngestApi(): IngestApi {
  if (cached !== undefined) return cached;
  const ship: grpc.MethodDefinition<ChunkMessage, AckMessage> = {
    path: SHIP_METHOD,
    requestStream: true,
    responseStream: true,
    requestSerialize: encodeChunk,
    requestDeserialize: decodeChunk,
    responseSerialize: encodeAck,
    responseDeserialize: decodeAck,
    originalName: 'ship',
  };
  const service = { Ship: ship } as unknown as grpc.ServiceDefinition;
  const Client = grpc.makeGenericClientConstructor(service, 'Ingest');
  cached = { service, Client };
  return cached;
}

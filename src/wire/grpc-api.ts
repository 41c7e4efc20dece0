import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { findUp } from '../util/package-info.js';

/**
 * The gRPC contract of api/api.proto, loaded at run time with @grpc/proto-loader. The file is found by
 * walking up from this module, so the same code works from src/ (tests) and dist/src/ (programs).
 */

export const AckCode = {
  OK: 'OK',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  RESOURCE_EXHAUSTED: 'RESOURCE_EXHAUSTED',
  UNAVAILABLE: 'UNAVAILABLE',
} as const;
export type AckCode = (typeof AckCode)[keyof typeof AckCode];

/** A Chunk as proto-loader hands it over (longs as numbers, bytes as Buffer). */
export interface ChunkMessage {
  sequence: number;
  entries: Buffer;
  entryCount: number;
}

export interface AckMessage {
  sequence: number;
  code: AckCode;
  message: string;
  retryAfterMs: number;
}

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

let cached: IngestApi | undefined;

export function loadIngestApi(): IngestApi {
  if (cached !== undefined) return cached;
  const definition = protoLoader.loadSync(findApiProto(), {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    megacollector: { v1: { Ingest: grpc.ServiceClientConstructor } };
  };
  const Client = pkg.megacollector.v1.Ingest;
  cached = { service: Client.service, Client };
  return cached;
}

export const SHIP_METHOD = '/megacollector.v1.Ingest/Ship';

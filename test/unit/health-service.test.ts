import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { protoPath, service as libraryService } from 'grpc-health-check';
import {
  decodeHealthList,
  decodeHealthRequest,
  decodeHealthResponse,
  encodeHealthList,
  encodeHealthRequest,
  encodeHealthResponse,
  healthServiceDefinition,
} from '../../src/aggregator/health-service.js';
import type { ServingStatus } from '../../src/aggregator/health-service.js';
import { WireError } from '../../src/wire/varint.js';

// The contract is the library's health.proto, read here by protobufjs (the aggregator never parses it).
const root = protobuf.loadSync(protoPath);
const Request = root.lookupType('grpc.health.v1.HealthCheckRequest');
const Response = root.lookupType('grpc.health.v1.HealthCheckResponse');
const List = root.lookupType('grpc.health.v1.HealthListResponse');
const options = { enums: String, defaults: true };
const statusArb = fc.constantFrom<ServingStatus>('UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN');
const serviceArb = fc.oneof(fc.constant(''), fc.string({ unit: 'grapheme', maxLength: 30 }));

describe('grpc.health.v1 codecs against health.proto (protobufjs)', () => {
  it('HealthCheckRequest and HealthCheckResponse both ways', () => {
    fc.assert(
      fc.property(serviceArb, statusArb, (service, status) => {
        expect(Request.toObject(Request.decode(encodeHealthRequest({ service })), options)).toEqual({ service });
        expect(decodeHealthRequest(Buffer.from(Request.encode({ service }).finish()))).toEqual({ service });
        expect(Response.toObject(Response.decode(encodeHealthResponse({ status })), options)).toEqual({ status });
        expect(decodeHealthResponse(Buffer.from(Response.encode(Response.fromObject({ status })).finish()))).toEqual({ status });
      }),
    );
  });

  it('HealthListResponse (a map) both ways', () => {
    fc.assert(
      fc.property(fc.dictionary(serviceArb, statusArb.map((status) => ({ status })), { maxKeys: 5 }), (statuses) => {
        expect(List.toObject(List.decode(encodeHealthList({ statuses })), options)).toEqual({ statuses });
        expect(decodeHealthList(Buffer.from(List.encode(List.fromObject({ statuses })).finish()))).toEqual({ statuses });
      }),
    );
  });

  it('has the library service definition paths and streaming shapes', () => {
    const shape = (def: Record<string, { path: string; requestStream: boolean; responseStream: boolean }>) =>
      Object.fromEntries(Object.entries(def).map(([name, m]) => [name, [m.path, m.requestStream, m.responseStream]]));
    expect(shape(healthServiceDefinition as never)).toEqual(shape(libraryService as never));
  });

  it('skips unknown fields and throws WireError on bytes that are not the message', () => {
    expect(decodeHealthRequest(Buffer.from([0x10, 0x01, 0x0a, 0x01, 0x61]))).toEqual({ service: 'a' });
    expect(() => decodeHealthRequest(Buffer.from([0x08, 0x01]))).toThrow(WireError);
    expect(() => decodeHealthRequest(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(WireError);
    expect(() => decodeHealthResponse(Buffer.from([0x0a, 0x00]))).toThrow(WireError);
  });
});

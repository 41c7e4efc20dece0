import * as grpc from '@grpc/grpc-js';
import { bytesFieldSize, writeBytesField, writeVarintField } from '../wire/proto-fields.js';
import { WIRE_LEN, WIRE_VARINT, WireError, WireReader, varintSize, writeVarint } from '../wire/varint.js';

/**
 * The standard gRPC health service (grpc.health.v1.Health: Check, Watch, List), served with the same
 * behaviour as grpc-health-check's HealthImplementation, whose messages are encoded here by hand.
 * Importing grpc-health-check loads @grpc/proto-loader and protobufjs and parses health.proto at once:
 * ~120 ms of CPU and ~5 MiB on every aggregator start (~50 ms and 2 MiB once another .proto is loaded)
 * for three messages of one field each (bench/README.md, start-up). Clients (the collector's `validate`, tests) still use the library; test/unit/health-service.test.ts
 * checks these codecs against protobufjs reading the library's health.proto.
 */

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
const STATUSES: readonly ServingStatus[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

export interface HealthCheckRequest {
  service: string;
}
export interface HealthCheckResponse {
  status: ServingStatus;
}
export interface HealthListResponse {
  statuses: Record<string, HealthCheckResponse>;
}

/** As grpc-health-check: List refuses to answer beyond this many services. */
const LIST_LIMIT = 100;

function readFields(buf: Buffer, onField: (field: number, r: WireReader, wireType: number) => boolean): void {
  const r = new WireReader(buf);
  while (!r.done) {
    const key = r.varint();
    const field = key >>> 3;
    if (field === 0) throw new WireError('field number 0');
    if (!onField(field, r, key & 7)) r.skip(key & 7);
  }
}

export function decodeHealthRequest(buf: Buffer): HealthCheckRequest {
  const request = { service: '' };
  readFields(buf, (field, r, wireType) => {
    if (field !== 1) return false;
    if (wireType !== WIRE_LEN) throw new WireError(`HealthCheckRequest.service with wire type ${wireType}`);
    const start = r.lengthDelimited();
    request.service = buf.toString('utf8', start, r.pos);
    return true;
  });
  return request;
}

export function encodeHealthRequest(request: HealthCheckRequest): Buffer {
  const service = Buffer.from(request.service ?? '', 'utf8');
  const out = Buffer.allocUnsafe(bytesFieldSize(1, service.length));
  writeBytesField(out, 0, 1, service);
  return out;
}

function statusNumber(status: ServingStatus): number {
  const n = STATUSES.indexOf(status);
  if (n < 0) throw new WireError(`unknown serving status ${String(status)}`);
  return n;
}

export function encodeHealthResponse(response: HealthCheckResponse): Buffer {
  const n = statusNumber(response.status);
  const out = Buffer.allocUnsafe(n === 0 ? 0 : 2);
  writeVarintField(out, 0, 1, n);
  return out;
}

export function decodeHealthResponse(buf: Buffer): HealthCheckResponse {
  const response: HealthCheckResponse = { status: 'UNKNOWN' };
  readFields(buf, (field, r, wireType) => {
    if (field !== 1) return false;
    if (wireType !== WIRE_VARINT) throw new WireError(`HealthCheckResponse.status with wire type ${wireType}`);
    const n = r.varint();
    response.status = STATUSES[n] ?? (n as unknown as ServingStatus);
    return true;
  });
  return response;
}

/** `map<string, HealthCheckResponse> statuses = 1`: one entry message (key = 1, value = 2) per service. */
export function encodeHealthList(list: HealthListResponse): Buffer {
  const parts: Buffer[] = [];
  for (const [service, response] of Object.entries(list.statuses)) {
    const key = Buffer.from(service, 'utf8');
    const value = encodeHealthResponse(response);
    // The value is a message: written even when empty (status UNKNOWN), or readers see no value at all.
    const entry = Buffer.allocUnsafe(bytesFieldSize(1, key.length) + 1 + varintSize(value.length) + value.length);
    let pos = writeBytesField(entry, 0, 1, key);
    entry[pos++] = (2 << 3) | WIRE_LEN;
    entry.set(value, writeVarint(entry, pos, value.length));
    const field = Buffer.allocUnsafe(1 + varintSize(entry.length) + entry.length);
    field[0] = (1 << 3) | WIRE_LEN;
    field.set(entry, writeVarint(field, 1, entry.length));
    parts.push(field);
  }
  return Buffer.concat(parts);
}

export function decodeHealthList(buf: Buffer): HealthListResponse {
  const statuses: Record<string, HealthCheckResponse> = {};
  readFields(buf, (field, r, wireType) => {
    if (field !== 1) return false;
    if (wireType !== WIRE_LEN) throw new WireError(`HealthListResponse.statuses with wire type ${wireType}`);
    const start = r.lengthDelimited();
    const entry = buf.subarray(start, r.pos);
    let service = '';
    let response: HealthCheckResponse = { status: 'UNKNOWN' };
    readFields(entry, (f, er, wt) => {
      if (f === 1 && wt === WIRE_LEN) {
        const s = er.lengthDelimited();
        service = entry.toString('utf8', s, er.pos);
      } else if (f === 2 && wt === WIRE_LEN) {
        const s = er.lengthDelimited();
        response = decodeHealthResponse(entry.subarray(s, er.pos));
      } else return false;
      return true;
    });
    statuses[service] = response;
    return true;
  });
  return { statuses };
}

function method<Req, Res>(
  name: string,
  responseStream: boolean,
  requestSerialize: (r: Req) => Buffer,
  requestDeserialize: (b: Buffer) => Req,
  responseSerialize: (r: Res) => Buffer,
  responseDeserialize: (b: Buffer) => Res,
): grpc.MethodDefinition<Req, Res> {
  return {
    path: `/grpc.health.v1.Health/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize,
    requestDeserialize,
    responseSerialize,
    responseDeserialize,
    originalName: name.toLowerCase(),
  };
}

/** grpc.health.v1.Health as a service definition (the same paths and messages as health.proto). */
export const healthServiceDefinition = {
  Check: method('Check', false, encodeHealthRequest, decodeHealthRequest, encodeHealthResponse, decodeHealthResponse),
  Watch: method('Watch', true, encodeHealthRequest, decodeHealthRequest, encodeHealthResponse, decodeHealthResponse),
  List: method('List', false, () => Buffer.alloc(0), () => ({}), encodeHealthList, decodeHealthList),
} as unknown as grpc.ServiceDefinition;

/** Drop-in for grpc-health-check's HealthImplementation (setStatus, addToServer). */
export class HealthService {
  private readonly statusMap = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<(status: ServingStatus) => void>>();

  constructor(initial: Record<string, ServingStatus> = {}) {
    for (const [service, status] of Object.entries(initial)) this.statusMap.set(service, status);
  }

  setStatus(service: string, status: ServingStatus): void {
    this.statusMap.set(service, status);
    for (const watcher of this.watchers.get(service) ?? []) watcher(status);
  }

  addToServer(server: grpc.Server): void {
    server.addService(healthServiceDefinition, {
      check: (call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: grpc.sendUnaryData<HealthCheckResponse>) => {
        const service = call.request.service;
        const status = this.statusMap.get(service);
        if (status !== undefined) callback(null, { status });
        else callback({ code: grpc.status.NOT_FOUND, details: `Health status unknown for service ${service}` });
      },
      watch: (call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        const service = call.request.service;
        const watcher = (status: ServingStatus): void => {
          call.write({ status });
        };
        let set = this.watchers.get(service);
        if (set === undefined) this.watchers.set(service, (set = new Set()));
        set.add(watcher);
        call.on('cancelled', () => set.delete(watcher));
        call.write({ status: this.statusMap.get(service) ?? 'SERVICE_UNKNOWN' });
      },
      list: (_call: grpc.ServerUnaryCall<unknown, HealthListResponse>, callback: grpc.sendUnaryData<HealthListResponse>) => {
        if (this.statusMap.size > LIST_LIMIT) {
          callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'Too many services to list.' });
          return;
        }
        const statuses: Record<string, HealthCheckResponse> = {};
        for (const [service, status] of this.statusMap) statuses[service] = { status };
        callback(null, { statuses });
      },
    });
  }
}

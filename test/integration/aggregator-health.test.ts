import * as grpc from '@grpc/grpc-js';
import { service as libraryService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthService } from '../../src/aggregator/health-service.js';

type Status = { status: string };
type HealthClient = grpc.Client & {
  check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: Status) => void): void;
  watch(req: { service: string }): grpc.ClientReadableStream<Status>;
  list(req: object, cb: (err: grpc.ServiceError | null, res?: { statuses: Record<string, Status> }) => void): void;
};

/** Our hand-encoded health service on a real server, asked by grpc-health-check's own client definition. */
describe('HealthService against the grpc-health-check client (real gRPC on loopback)', () => {
  const server = new grpc.Server();
  const health = new HealthService({ '': 'SERVING', 'megacollector.v1.Ingest': 'SERVING' });
  let client: HealthClient;

  beforeAll(async () => {
    health.addToServer(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const Health = grpc.makeClientConstructor(libraryService as grpc.ServiceDefinition, 'grpc.health.v1.Health');
    client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as HealthClient;
  });

  afterAll(async () => {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });

  const check = (service: string): Promise<string | undefined> =>
    new Promise((resolve, reject) => client.check({ service }, (err, res) => (err ? reject(err) : resolve(res?.status))));

  it('Check answers a known service and NOT_FOUND for an unknown one', async () => {
    expect(await check('')).toBe('SERVING');
    expect(await check('megacollector.v1.Ingest')).toBe('SERVING');
    await expect(check('nope')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('Watch sends the current status, then every change; SERVICE_UNKNOWN for an unknown service', async () => {
    const call = client.watch({ service: 'w' });
    const seen: string[] = [];
    const two = new Promise<void>((resolve) =>
      call.on('data', (m: Status) => {
        seen.push(m.status);
        if (seen.length === 1) health.setStatus('w', 'SERVING');
        if (seen.length === 2) health.setStatus('w', 'NOT_SERVING');
        if (seen.length === 3) resolve();
      }),
    );
    call.on('error', () => undefined); // the cancel below
    await two;
    call.cancel();
    expect(seen).toEqual(['SERVICE_UNKNOWN', 'SERVING', 'NOT_SERVING']);
    expect(await check('w')).toBe('NOT_SERVING');
  });

  it('List returns every status', async () => {
    const list = await new Promise<Record<string, Status>>((resolve, reject) =>
      client.list({}, (err, res) => (err ? reject(err) : resolve(res?.statuses ?? {}))),
    );
    expect(list['']).toEqual({ status: 'SERVING' });
    expect(list['megacollector.v1.Ingest']).toEqual({ status: 'SERVING' });
  });
});

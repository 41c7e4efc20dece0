import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import type { AckMessage } from '../../src/wire/grpc-api.js';

/**
 * Stands in for grpc-js's ServerDuplexStream of Ingest.Ship: the ingest service only uses events,
 * write, end, pause, resume, sendMetadata and getPeer. Chunks are pushed with `emit('data', chunk)`,
 * several in one tick as grpc-js may deliver them.
 */
export class FakeShipCall extends EventEmitter {
  readonly written: AckMessage[] = [];
  readonly metadata: grpc.Metadata[] = [];
  ended = false;
  paused = false;
  sendMetadata(md: grpc.Metadata): void {
    this.metadata.push(md);
  }
  write(ack: AckMessage): boolean {
    this.written.push(ack);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  getPeer(): string {
    return 'test';
  }
}

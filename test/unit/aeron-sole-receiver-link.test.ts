import { describe, expect, it } from 'vitest';
import { SoleReceiverLink } from '../../src/aeron/sole-receiver-link.js';
import type { LinkSocket } from '../../src/aeron/sole-receiver-link.js';

/** A socket that records calls and behaves as node:dgram's about connect state. */
function fakeSocket(refuse = false): LinkSocket & { calls: string[] } {
  let peer: { address: string; port: number } | undefined;
  const calls: string[] = [];
  return {
    calls,
    connect(port, address) {
      calls.push(`connect ${address}:${port}`);
      if (!refuse) peer = { address, port };
    },
    disconnect() {
      calls.push('disconnect');
      if (peer === undefined) throw new Error('ERR_SOCKET_DGRAM_NOT_CONNECTED');
      peer = undefined;
    },
    remoteAddress() {
      if (peer === undefined) throw new Error('ERR_SOCKET_DGRAM_NOT_CONNECTED');
      return peer;
    },
    send(_msg, port, address) {
      if (peer !== undefined && port !== undefined) throw new Error('ERR_SOCKET_DGRAM_IS_CONNECTED');
      calls.push(port === undefined ? 'send' : `send ${address}:${port}`);
    },
  };
}

const d = Buffer.alloc(8);
const target = [{ address: '10.0.0.5', port: 40123 }];

describe('SoleReceiverLink', () => {
  it('connects only to a status message from exactly where data goes, then sends without an address', () => {
    const s = fakeSocket();
    const link = new SoleReceiverLink(s, true);
    link.send(d, target);
    link.onStatusMessage('10.0.0.6', 40123, target);
    link.onStatusMessage('10.0.0.5', 40124, target);
    expect(link.connected).toBe(false);
    link.onStatusMessage('10.0.0.5', 40123, target);
    link.onStatusMessage('10.0.0.5', 40123, target);
    link.send(d, target);
    expect(s.calls).toEqual(['send 10.0.0.5:40123', 'connect 10.0.0.5:40123', 'send']);
    expect(link.connects).toBe(1);
  });

  it('lets go when the receiver falls silent or the target moves, and sends with an address again', () => {
    const s = fakeSocket();
    const link = new SoleReceiverLink(s, true);
    link.onStatusMessage('10.0.0.5', 40123, target);
    link.check(true, target);
    expect(link.connected).toBe(true);
    link.check(false, target);
    expect(link.connected).toBe(false);
    link.onStatusMessage('10.0.0.5', 40123, target);
    link.check(true, [{ address: '10.0.0.9', port: 40123 }]);
    expect(link.connected).toBe(false);
    link.send(d, [{ address: '10.0.0.9', port: 40123 }]);
    expect(s.calls).toEqual(['connect 10.0.0.5:40123', 'disconnect', 'connect 10.0.0.5:40123', 'disconnect', 'send 10.0.0.9:40123']);
  });

  it('never connects when disabled (multicast, multi-destination) or with several targets, and survives a refused connect', () => {
    const off = fakeSocket();
    new SoleReceiverLink(off, false).onStatusMessage('10.0.0.5', 40123, target);
    const many = fakeSocket();
    new SoleReceiverLink(many, true).onStatusMessage('10.0.0.5', 40123, [...target, { address: '10.0.0.6', port: 40123 }]);
    expect([...off.calls, ...many.calls]).toEqual([]);
    const refused = fakeSocket(true);
    const link = new SoleReceiverLink(refused, true);
    link.onStatusMessage('10.0.0.5', 40123, target);
    expect(link.connected).toBe(false);
    link.send(d, target);
    expect(refused.calls).toEqual(['connect 10.0.0.5:40123', 'send 10.0.0.5:40123']);
  });
});

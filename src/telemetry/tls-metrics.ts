import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import { HANDSHAKE_FAILURE_REASONS } from '../aggregator/grpc-listener.js';
import type { HandshakeFailureReason } from '../aggregator/grpc-listener.js';

/** Refused TLS handshakes on the aggregator's gRPC port, by reason (every reason present at zero). */
export function createTlsHandshakeFailures(registry: Registry): Counter<'reason'> {
  const counter = new Counter({
    name: 'mega_aggregator_tls_handshake_failures_total',
    help: 'TLS handshakes on the gRPC port that failed (no or untrusted client certificate, plaintext, timeout, ...), by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of HANDSHAKE_FAILURE_REASONS) counter.inc({ reason } satisfies { reason: HandshakeFailureReason }, 0);
  return counter;
}

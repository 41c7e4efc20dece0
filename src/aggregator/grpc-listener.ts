import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { TlsMaterial } from '../config/aggregator-config.js';

/**
 * The gRPC port's own socket listener. grpc-js binds and terminates TLS inside its private
 * `http2.createSecureServer`, where a failed handshake (client without a certificate, a certificate
 * from another CA, plaintext against TLS, a server key that does not match its certificate) is
 * swallowed without a trace. So we listen ourselves (net or tls server), see every `tlsClientError`,
 * and hand each accepted socket (TLS already terminated, ALPN h2) to grpc-js through its public
 * `createConnectionInjector`. Binding ourselves also yields plain errno codes for a taken port or
 * an unassignable address, without grpc-js's logger writing to stderr.
 */

/** Closed set of reasons, the label values of mega_aggregator_tls_handshake_failures_total. */
export const HANDSHAKE_FAILURE_REASONS = ['no_client_certificate', 'bad_client_certificate', 'not_tls', 'protocol', 'timeout', 'aborted'] as const;
export type HandshakeFailureReason = (typeof HANDSHAKE_FAILURE_REASONS)[number];

export interface HandshakeFailure {
  /** "address:port" of the peer, or "unknown" when the socket is already gone. */
  readonly peer: string;
  readonly reason: HandshakeFailureReason;
  /** OpenSSL's or Node's text, e.g. "peer did not return a certificate". */
  readonly message: string;
}

/** Maps a TLS server-side error to a reason (pure; OpenSSL's codes as Node exposes them). */
export function classifyHandshakeError(err: { code?: string; message?: string }): HandshakeFailureReason {
  const code = err.code ?? '';
  const message = err.message ?? '';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'no_client_certificate';
  if (
    /CERTIFICATE_VERIFY_FAILED|BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_(EXPIRED|REVOKED|UNKNOWN)|UNKNOWN_CA/.test(code) ||
    /certificate verify failed/i.test(message)
  ) {
    return 'bad_client_certificate';
  }
  if (/WRONG_VERSION_NUMBER|HTTP_REQUEST|HTTPS_PROXY_REQUEST|UNKNOWN_PROTOCOL|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE/.test(code)) return 'not_tls';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket disconnected|socket hang up/i.test(message)) return 'aborted';
  return 'protocol';
}

export interface GrpcListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsMaterial | null;
  /** Receives each accepted connection (TLS terminated when `tls` is set). */
  readonly onConnection: (socket: Socket) => void;
  readonly onHandshakeFailure?: (failure: HandshakeFailure) => void;
}

export interface GrpcListener {
  readonly port: number;
  /** Stops accepting; connections already handed over are grpc-js's to close. */
  close(): Promise<void>;
}

/** A listen failure with the errno code kept (EADDRINUSE, EADDRNOTAVAIL, EACCES, ...). */
export class ListenError extends Error {
  readonly code: string;

  constructor(address: string, cause: NodeJS.ErrnoException) {
    const code = cause.code ?? 'error';
    super(`cannot listen on ${address}: ${describeListenError(code)} (${code})`, { cause });
    this.name = 'ListenError';
    this.code = code;
  }
}

function describeListenError(code: string): string {
  switch (code) {
    case 'EADDRINUSE':
      return 'the port is taken by another process';
    case 'EADDRNOTAVAIL':
      return 'no interface of this host has that address';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve';
    default:
      return 'listen failed';
  }
}

function peerOf(socket: Socket | undefined): string {
  const address = socket?.remoteAddress;
  if (address === undefined) return 'unknown';
  return address.includes(':') ? `[${address}]:${socket?.remotePort}` : `${address}:${socket?.remotePort}`;
}

/** The reason for a completed handshake whose client certificate the CA did not sign (or none was sent). */
function unauthorizedFailure(socket: TLSSocket, peer: string): HandshakeFailure {
  const presented = Object.keys(socket.getPeerCertificate()).length > 0;
  const code = String(socket.authorizationError ?? 'unknown');
  return presented
    ? { peer, reason: 'bad_client_certificate', message: `client certificate refused (${code})` }
    : { peer, reason: 'no_client_certificate', message: 'the client sent no certificate' };
}

function createServer(options: GrpcListenerOptions): NetServer {
  if (options.tls === null) return createNetServer((socket) => options.onConnection(socket));
  // Peers are noted when the TCP connection arrives: a socket that failed its handshake is gone
  // (no address) by the time the error is reported.
  const peers = new WeakMap<Socket, string>();
  const peerOfTls = (socket: TLSSocket): string => {
    const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
    return (raw === undefined ? undefined : peers.get(raw)) ?? peerOf(socket);
  };
  const server = createTlsServer(
    {
      cert: options.tls.certificate,
      key: options.tls.key,
      ca: options.tls.caCertificate,
      // mTLS: a client must present a certificate signed by the CA. Node enforces
      // rejectUnauthorized after the handshake by destroying the socket without any event, so we
      // check `authorized` ourselves (below) to log and count the refusal.
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      handshakeTimeout: 10_000,
    },
    (socket: TLSSocket) => {
      // As grpc-js does for its own TLS sockets (nodejs/node#35824): errors after the handshake are the session's.
      socket.on('error', () => undefined);
      if (!socket.authorized) {
        options.onHandshakeFailure?.(unauthorizedFailure(socket, peerOfTls(socket)));
        socket.destroy();
        return;
      }
      options.onConnection(socket);
    },
  );
  server.on('connection', (raw: Socket) => peers.set(raw, peerOf(raw)));
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    options.onHandshakeFailure?.({ peer: peerOfTls(socket), reason: classifyHandshakeError(err), message: err.message });
  });
  return server;
}

export async function listenGrpc(options: GrpcListenerOptions): Promise<GrpcListener> {
  const server = createServer(options);
  const shown = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new ListenError(shown, err));
    server.once('error', onError);
    server.listen({ host: options.host, port: options.port, ipv6Only: false }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // After start-up an accept error (EMFILE) must not crash the process; the next accept retries.
  server.on('error', () => undefined);
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

import type { Http2Server, ServerHttp2Session } from 'node:http2';

/**
 * The HTTP/2 receive window and frame size the aggregator offers each collector's stream, and the
 * window of each connection. With HTTP/2's defaults (64 KiB windows, 16 KiB frames) a collector sends
 * 64 KiB, then waits for the aggregator's event loop to read it and answer with a WINDOW_UPDATE: for a
 * 1 MiB chunk, 16 round trips between two busy processes and 64 DATA frames, each a callback through
 * Node's http2 and grpc-js. 256 KiB lets a chunk flow in four frames with one round trip per quarter.
 * Measured (`e2e-bench.js 1000000 120 file`, three interleaved pairs on an idle machine): 2.30 s
 * against 2.71 s per million lines, the aggregator's CPU after ready 1.88 s against 2.12 s, its peak
 * RSS 124-126 MiB against 117-124. 1 MiB windows were no faster and cost 5-8 MiB more. Memory stays
 * bounded by the window: a stream the in-flight budget holds back has at most 256 KiB in the
 * aggregator's HTTP/2 buffers (50 streams: 12.5 MiB), and a connection at most 1 MiB.
 */
export const INGEST_HTTP2_SETTINGS = { initialWindowSize: 256 * 1024, maxFrameSize: 256 * 1024 } as const;
export const INGEST_CONNECTION_WINDOW_BYTES = 1024 * 1024;

/**
 * Applies the settings above to the HTTP/2 servers grpc-js made for a server (its private
 * `http2Servers`, filled by `createConnectionInjector`: grpc-js has no option for the server's
 * windows). Returns false when that map is not there (a grpc-js upgrade moved it): the server then
 * runs with HTTP/2's defaults, slower but correct.
 */
export function applyIngestHttp2Settings(grpcServer: object): boolean {
  const servers = (grpcServer as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) return false;
  for (const server of servers.keys() as IterableIterator<Http2Server>) {
    if (typeof server?.updateSettings !== 'function') return false;
    // For the SETTINGS frame each new session starts with.
    server.updateSettings(INGEST_HTTP2_SETTINGS);
    // The connection's own window starts at 64 KiB whatever SETTINGS say; only a WINDOW_UPDATE grows it.
    server.on('session', (session: ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(INGEST_CONNECTION_WINDOW_BYTES);
      } catch {
        // A session already closing: nothing to size.
      }
    });
  }
  return true;
}

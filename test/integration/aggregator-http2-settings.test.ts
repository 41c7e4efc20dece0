import { connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { INGEST_CONNECTION_WINDOW_BYTES, INGEST_HTTP2_SETTINGS } from '../../src/aggregator/grpc-http2-settings.js';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { killAndRemove } from '../helpers/tear-down.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The real aggregator offers collectors 256 KiB stream windows and frames and a 1 MiB connection window
 * (grpc-http2-settings.ts), seen from a plain HTTP/2 client on loopback: what it announces in its
 * SETTINGS and the window it opens for the connection. Without them a collector's 1 MiB chunk crawls
 * through 64 KiB windows, one WINDOW_UPDATE round trip each.
 */
let dir: string;
let aggregator: AggregatorProcess | undefined;
let session: ClientHttp2Session | undefined;

afterEach(async () => {
  session?.destroy();
  session = undefined;
  await killAndRemove([aggregator], dir);
});

describe('aggregator HTTP/2 flow control', () => {
  it('announces 256 KiB stream windows and frames, opens a 1 MiB connection window, and never logs that it could not', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-h2-'));
    aggregator = await startAggregator({ env: { AGGREGATOR_SPOOL_DIR: join(dir, 'spool') } });
    const client = connect(`http://${aggregator.address}`);
    session = client;
    client.on('error', () => undefined);
    const settings = await new Promise<{ initialWindowSize?: number; maxFrameSize?: number }>((resolve) => client.once('remoteSettings', resolve));
    expect({ initialWindowSize: settings.initialWindowSize, maxFrameSize: settings.maxFrameSize }).toEqual(INGEST_HTTP2_SETTINGS);
    // The connection window arrives as a WINDOW_UPDATE right after the SETTINGS.
    await waitFor(() => (client.state.remoteWindowSize ?? 0) >= INGEST_CONNECTION_WINDOW_BYTES, { timeoutMs: 5000, intervalMs: 10, what: 'the 1 MiB connection window' });
    expect(client.state.remoteWindowSize).toBe(INGEST_CONNECTION_WINDOW_BYTES);
    expect(aggregator.logs.some((l) => l.includes('HTTP/2 servers'))).toBe(false);
  });
});

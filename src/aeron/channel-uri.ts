import { isValidMtu, isValidTermLength } from './term-math.js';

/** A parsed `aeron:udp?endpoint=host:port|mtu=..|term-length=..|session-id=..` channel. */
export interface UdpChannel {
  readonly host: string;
  readonly port: number;
  readonly mtu?: number;
  readonly termLength?: number;
  readonly sessionId?: number;
  /** The channel text as given, for labels and logs. */
  readonly text: string;
}

export class AeronChannelError extends Error {
  readonly code = 'AERON_INVALID_CHANNEL';

  constructor(message: string) {
    super(message);
    this.name = 'AeronChannelError';
  }
}

/** Aeron URIs write sizes like "64k" or "1m" (aeron_uri_parse_size_t). */
function parseSize(value: string, what: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(value.trim());
  if (m === null) throw new AeronChannelError(`${what}="${value}" is not a size`);
  const unit = (m[2] ?? '').toLowerCase();
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : unit === 'g' ? 1024 * 1024 * 1024 : 1;
  return Number(m[1]) * mult;
}

function parseEndpoint(value: string, allowPortZero: boolean): { host: string; port: number } {
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || value[close + 1] !== ':') throw new AeronChannelError(`endpoint "${value}" is not [ipv6]:port`);
    host = value.slice(1, close);
    portText = value.slice(close + 2);
  } else {
    const colon = value.lastIndexOf(':');
    if (colon <= 0) throw new AeronChannelError(`endpoint "${value}" must be host:port`);
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < (allowPortZero ? 0 : 1) || port > 65535) throw new AeronChannelError(`endpoint "${value}" has an invalid port`);
  return { host, port };
}

/**
 * Parses a unicast UDP channel. `aeron:ipc` and other media are refused: they need a media driver's
 * shared memory on this host, which this pure-TypeScript publication deliberately does without.
 * `allowPortZero` lets a receiver bind an ephemeral port (tests).
 */
export function parseUdpChannel(text: string, opts: { allowPortZero?: boolean } = {}): UdpChannel {
  const trimmed = text.trim();
  if (!trimmed.startsWith('aeron:')) throw new AeronChannelError(`channel "${text}" does not start with "aeron:"`);
  const rest = trimmed.slice('aeron:'.length);
  const q = rest.indexOf('?');
  const media = q < 0 ? rest : rest.slice(0, q);
  if (media === 'ipc') {
    throw new AeronChannelError(
      'channel "aeron:ipc" is not supported: IPC needs a local Aeron media driver\'s shared memory, and this emitter speaks the UDP protocol itself without a driver; use aeron:udp?endpoint=host:port',
    );
  }
  if (media !== 'udp') throw new AeronChannelError(`channel media "${media}" is not supported: only aeron:udp?endpoint=host:port is`);
  const params = new Map<string, string>();
  for (const part of (q < 0 ? '' : rest.slice(q + 1)).split('|')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new AeronChannelError(`channel parameter "${part}" is not key=value`);
    params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const endpoint = params.get('endpoint');
  if (endpoint === undefined) throw new AeronChannelError(`channel "${text}" has no endpoint=host:port`);
  if (params.has('control') || params.has('control-mode')) {
    throw new AeronChannelError('multi-destination and response channels (control=, control-mode=) are not supported');
  }
  const { host, port } = parseEndpoint(endpoint, opts.allowPortZero === true);
  if (host === 'localhost') throw new AeronChannelError('use 127.0.0.1 rather than localhost, so both ends agree on the address family');
  let mtu: number | undefined;
  let termLength: number | undefined;
  let sessionId: number | undefined;
  const mtuText = params.get('mtu');
  if (mtuText !== undefined) {
    mtu = parseSize(mtuText, 'mtu');
    if (!isValidMtu(mtu)) throw new AeronChannelError(`mtu=${mtuText} must be a multiple of 32 between 64 and 65504 (and at most the 128 KiB receiver window)`);
  }
  const termText = params.get('term-length');
  if (termText !== undefined) {
    termLength = parseSize(termText, 'term-length');
    if (!isValidTermLength(termLength)) throw new AeronChannelError(`term-length=${termText} must be a power of two between 64k and 1g`);
  }
  const sessionText = params.get('session-id');
  if (sessionText !== undefined) {
    if (!/^-?\d+$/.test(sessionText)) throw new AeronChannelError(`session-id=${sessionText} is not an integer`);
    sessionId = Number(sessionText) | 0;
  }
  return { host, port, text: trimmed, ...(mtu === undefined ? {} : { mtu }), ...(termLength === undefined ? {} : { termLength }), ...(sessionId === undefined ? {} : { sessionId }) };
}

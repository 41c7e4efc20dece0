import { isValidMtu, isValidTermLength } from './term-math.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/**
 * A parsed `aeron:udp?endpoint=host:port|mtu=..|term-length=..|session-id=..` channel, or a
 * multi-destination-cast one (`control-mode=manual` with destinations given beside the channel, or
 * `control=host:port|control-mode=dynamic`).
 */
export interface UdpChannel {
  /** The endpoint; for multi-destination-cast, the control address (0.0.0.0:0 when manual has none). */
  readonly host: string;
  readonly port: number;
  /**
   * Multi-destination-cast: every datagram goes to each destination. `manual`: the destinations listed
   * (Aeron's addDestination; from the configuration's `destinations`). `dynamic`: receivers that send
   * status messages to the control address (the publication binds there), each dropped after 5 s of
   * silence.
   */
  readonly mdc?: { readonly mode: 'manual' | 'dynamic'; readonly destinations: readonly Endpoint[] };
  readonly mtu?: number;
  readonly termLength?: number;
  readonly sessionId?: number;
  /** `init-term-id=`: the first term's id (random otherwise, as the driver). */
  readonly initialTermId?: number;
  /** `linger=`: longest wait for the receiver's end-of-stream answer on close, in ms. */
  readonly lingerMs?: number;
  /** `interface=host[:port]`: the local address (and port) the publication sends from. */
  readonly localHost?: string;
  readonly localPort?: number;
  /**
   * A multicast endpoint: data goes to the group `host`, receivers answer on the control group (the
   * data group's last byte plus one, same port), which the publication joins on `localHost`.
   */
  readonly multicast?: { readonly controlGroup: string; readonly ttl?: number };
  /** `so-sndbuf=` / `so-rcvbuf=`: socket buffer sizes in bytes. */
  readonly socketSendBuffer?: number;
  readonly socketReceiveBuffer?: number;
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

/** Aeron URIs write durations as nanoseconds, or with a unit: "5s", "500ms", "100us", "10ns". */
function parseDurationMs(value: string, what: string): number {
  const m = /^(\d+)(ns|us|ms|s)?$/.exec(value.trim());
  if (m === null) throw new AeronChannelError(`${what}="${value}" is not a duration (e.g. 5s, 500ms, or nanoseconds)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ns';
  return unit === 's' ? n * 1000 : unit === 'ms' ? n : unit === 'us' ? n / 1000 : n / 1e6;
}

function parseBoolean(value: string, what: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new AeronChannelError(`${what}="${value}" must be true or false`);
}

/** 224.0.0.0/4 or ff00::/8. */
function isMulticast(host: string): boolean {
  const first = /^(\d+)\./.exec(host);
  if (first !== null) return Number(first[1]) >= 224 && Number(first[1]) <= 239;
  return /^ff[0-9a-f]{2}:/i.test(host);
}

/**
 * What each channel parameter a user of Aeron (or Telegraf's Aeron output) writes does here: honoured,
 * accepted because it changes nothing for a publication without a driver, or refused with the reason.
 * Anything not listed is refused too: no parameter is ever silently ignored.
 */
const UNSUPPORTED: Record<string, string> = {
  'term-id': 'starting mid-stream (term-id=, term-offset=) is not supported: the publication starts at position 0 of init-term-id',
  'term-offset': 'starting mid-stream (term-id=, term-offset=) is not supported: the publication starts at position 0 of init-term-id',
  'response-endpoint': 'response channels are not supported',
  'response-correlation-id': 'response channels are not supported',
  cc: 'congestion control other than the default static window is not supported',
  'congestion-control': 'congestion control other than the default static window is not supported',
  fc: 'the publication always paces itself by its slowest live receiver (Aeron\'s min flow control), so that none loses data; other strategies are not supported',
  'flow-control': 'the publication always paces itself by its slowest live receiver (Aeron\'s min flow control), so that none loses data; other strategies are not supported',
};
const HONOURED = new Set(['control', 'control-mode', 'ttl', 'endpoint', 'mtu', 'term-length', 'session-id', 'init-term-id', 'linger', 'interface', 'so-sndbuf', 'so-rcvbuf', 'reliable', 'sparse', 'eos', 'alias', 'tags']);

/**
 * The control group of a multicast data group: its last byte plus one, which is why Aeron requires the
 * data group's last byte to be odd (aeron_ipv4_multicast_control_address).
 */
function multicastOf(group: string, ttlText: string | undefined): { controlGroup: string; ttl?: number } {
  let ttl: number | undefined;
  if (ttlText !== undefined) {
    if (!/^\d+$/.test(ttlText) || Number(ttlText) > 255) throw new AeronChannelError(`ttl=${ttlText} must be an integer from 0 to 255`);
    ttl = Number(ttlText);
  }
  if (group.includes(':')) throw new AeronChannelError(`endpoint ${group}: IPv6 multicast is not supported yet; use an IPv4 group`);
  const bytes = group.split('.').map(Number);
  const last = bytes[3] as number;
  if (bytes.length !== 4 || bytes.some((b) => !Number.isInteger(b) || b < 0 || b > 255)) throw new AeronChannelError(`endpoint ${group} is not an IPv4 address`);
  if ((last & 1) === 0) throw new AeronChannelError(`endpoint ${group}: a multicast data group's last byte must be odd (its control group is the next address)`);
  return { controlGroup: [bytes[0], bytes[1], bytes[2], last + 1].join('.'), ...(ttl === undefined ? {} : { ttl }) };
}

/**
 * One multi-destination-cast destination, as Aeron's addDestination takes it
 * (`aeron:udp?endpoint=host:port`) or as `host:port`.
 */
export function parseDestination(text: string): Endpoint {
  const trimmed = text.trim();
  if (!trimmed.startsWith('aeron:')) return parseEndpoint(trimmed, false);
  if (!trimmed.startsWith('aeron:udp?')) throw new AeronChannelError(`destination "${text}" must be aeron:udp?endpoint=host:port or host:port`);
  const params = trimmed.slice('aeron:udp?'.length).split('|');
  const endpoint = params.find((p) => p.startsWith('endpoint='));
  const other = params.filter((p) => p !== '' && !p.startsWith('endpoint='));
  if (endpoint === undefined || other.length > 0) throw new AeronChannelError(`destination "${text}" must be aeron:udp?endpoint=host:port with no other parameter`);
  return parseEndpoint(endpoint.slice('endpoint='.length), false);
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
  for (const key of params.keys()) {
    const reason = UNSUPPORTED[key];
    if (reason !== undefined) throw new AeronChannelError(`channel parameter ${key}= is refused: ${reason}`);
    if (!HONOURED.has(key)) throw new AeronChannelError(`channel parameter ${key}= is not supported by this publication`);
  }
  const mdc = multiDestinationOf(params);
  const endpoint = params.get('endpoint');
  if (endpoint === undefined && mdc === undefined) throw new AeronChannelError(`channel "${text}" has no endpoint=host:port`);
  const { host, port } = mdc !== undefined ? mdc.control : parseEndpoint(endpoint as string, opts.allowPortZero === true);
  const multicast = isMulticast(host) ? multicastOf(host, params.get('ttl')) : undefined;
  if (multicast === undefined && params.has('ttl')) throw new AeronChannelError('channel parameter ttl= is refused: it applies to multicast endpoints only');
  // reliable=false would let the receiver skip lost data: never for a shipper that promises no loss.
  if (params.has('reliable') && !parseBoolean(params.get('reliable') as string, 'reliable')) {
    throw new AeronChannelError('channel parameter reliable=false is refused: an unreliable stream gives up lost data');
  }
  // eos=false would make a subscriber take a closed publication for a lost one; we always end cleanly.
  if (params.has('eos') && !parseBoolean(params.get('eos') as string, 'eos')) {
    throw new AeronChannelError('channel parameter eos=false is refused: the publication always ends its stream with end of stream');
  }
  // sparse= only decides how a driver allocates its log files; these term buffers live in memory.
  if (params.has('sparse')) parseBoolean(params.get('sparse') as string, 'sparse');
  const extra: Partial<Record<'initialTermId' | 'lingerMs' | 'localPort' | 'socketSendBuffer' | 'socketReceiveBuffer', number>> & { localHost?: string } = {};
  const initText = params.get('init-term-id');
  if (initText !== undefined) {
    if (!/^-?\d+$/.test(initText) || Number(initText) < -(2 ** 31) || Number(initText) >= 2 ** 31) throw new AeronChannelError(`init-term-id=${initText} is not a 32-bit integer`);
    extra.initialTermId = Number(initText);
  }
  const lingerText = params.get('linger');
  if (lingerText !== undefined) extra.lingerMs = parseDurationMs(lingerText, 'linger');
  const iface = params.get('interface');
  if (mdc !== undefined && mdc.control.port !== 0) {
    extra.localHost = mdc.control.host;
    extra.localPort = mdc.control.port;
  }
  if (iface !== undefined) {
    if (iface.includes('/')) throw new AeronChannelError(`interface=${iface}: subnet notation is not supported; give the local interface's address (e.g. interface=192.168.1.10)`);
    const local = iface.includes(':') && !iface.startsWith('[') && iface.indexOf(':') === iface.lastIndexOf(':') ? parseEndpoint(iface, true) : iface.startsWith('[') ? parseEndpoint(iface, true) : { host: iface, port: 0 };
    extra.localHost = local.host;
    if (local.port !== 0) extra.localPort = local.port;
  }
  const sndbuf = params.get('so-sndbuf');
  if (sndbuf !== undefined) extra.socketSendBuffer = parseSize(sndbuf, 'so-sndbuf');
  const rcvbuf = params.get('so-rcvbuf');
  if (rcvbuf !== undefined) extra.socketReceiveBuffer = parseSize(rcvbuf, 'so-rcvbuf');
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
  return {
    host,
    port,
    text: trimmed,
    ...(mtu === undefined ? {} : { mtu }),
    ...(termLength === undefined ? {} : { termLength }),
    ...(sessionId === undefined ? {} : { sessionId }),
    ...(multicast === undefined ? {} : { multicast }),
    ...(mdc === undefined ? {} : { mdc: { mode: mdc.mode, destinations: [] } }),
    ...extra,
  };
}

/**
 * control-mode= and control=, as a publication reads them: `manual` (destinations listed beside the
 * channel; control= optionally names the local address status messages come to) or `dynamic`
 * (control=host:port required: receivers announce themselves there). No endpoint= and no interface=
 * with either: the destinations are the endpoints, control= the local address.
 */
function multiDestinationOf(params: ReadonlyMap<string, string>): { mode: 'manual' | 'dynamic'; control: Endpoint } | undefined {
  const mode = params.get('control-mode');
  const control = params.get('control');
  if (mode === undefined) {
    if (control !== undefined) throw new AeronChannelError('channel parameter control= needs control-mode=dynamic (receivers announce themselves to control=) or control-mode=manual');
    return undefined;
  }
  if (mode !== 'manual' && mode !== 'dynamic') throw new AeronChannelError(`control-mode=${mode} must be manual or dynamic`);
  if (params.has('endpoint')) throw new AeronChannelError(`channel parameter endpoint= is refused with control-mode=${mode}: ${mode === 'manual' ? 'list the receivers in "destinations"' : 'receivers send to control= and are sent to where they speak from'}`);
  if (params.has('interface')) throw new AeronChannelError(`channel parameter interface= is refused with control-mode=${mode}: control=host:port names the local address`);
  if (mode === 'dynamic' && control === undefined) throw new AeronChannelError('control-mode=dynamic needs control=host:port, the address receivers send their status messages to');
  const endpoint = control === undefined ? { host: '0.0.0.0', port: 0 } : parseEndpoint(control, false);
  if (isMulticast(endpoint.host)) throw new AeronChannelError(`control=${control} must be a unicast address`);
  return { mode, control: endpoint };
}

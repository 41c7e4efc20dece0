/**
 * Listen and remote addresses: "host:port", "[v6]:port", "[fe80::1%eth0]:port", ":port" (all
 * interfaces). Port 0 asks the OS for a free port (tests).
 */
export interface HostPort {
  /** Host without brackets; "::" for all interfaces. */
  readonly host: string;
  readonly port: number;
}

export function parseHostPort(address: string): HostPort {
  const a = address.trim();
  let host: string;
  let portText: string;
  if (a.startsWith('[')) {
    const close = a.indexOf(']');
    if (close === -1 || a[close + 1] !== ':') throw new Error(`invalid address "${address}": expected [ipv6]:port`);
    host = a.slice(1, close);
    portText = a.slice(close + 2);
  } else {
    const colon = a.lastIndexOf(':');
    if (colon === -1) throw new Error(`invalid address "${address}": expected host:port`);
    host = a.slice(0, colon);
    portText = a.slice(colon + 1);
    if (host.includes(':')) throw new Error(`invalid address "${address}": put an IPv6 host in brackets, e.g. [::1]:8000`);
  }
  if (!/^\d+$/.test(portText)) throw new Error(`invalid port in "${address}"`);
  const port = Number(portText);
  if (port > 65535) throw new Error(`port ${port} out of range in "${address}"`);
  return { host: host === '' ? '::' : host, port };
}

/** The form grpc-js expects for a listen or target address. */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

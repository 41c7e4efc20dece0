import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { formatHostPort, parseHostPort } from '../config/address.js';
import { errorMessage } from '../errors.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { AggregatorTarget } from './aggregator-pool.js';

/**
 * Turns COLLECTOR_REMOTE_ADDRESS (addresses and DNS names, comma-separated) into the addresses to
 * dial, again every COLLECTOR_RESOLVE_INTERVAL and soon after a stream fails, so a name whose
 * addresses change (a Kubernetes headless Service as pods come and go) is followed. A name that fails
 * to resolve keeps the addresses it had (a DNS outage does not take the aggregators away).
 */

/** The IP addresses of a host name (an empty list or a rejection: none now). */
export type HostResolver = (host: string) => Promise<readonly string[]>;

/** The system's resolver (getaddrinfo: /etc/hosts, then DNS, as grpc-js itself resolves). */
export const systemResolver: HostResolver = async (host) => (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Asks the given DNS servers ("ip" or "ip:port") directly, A and AAAA records, bypassing
 * /etc/hosts and any caching in the C library (COLLECTOR_DNS_SERVERS).
 */
export function dnsServerResolver(servers: readonly string[]): HostResolver {
  const resolver = new dns.Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([...servers]);
  return async (host) => {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const found = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (found.length === 0 && v4.status === 'rejected') throw v4.reason;
    return found;
  };
}

export interface AggregatorResolverOptions {
  /** The configured "host:port" items. */
  readonly addresses: readonly string[];
  readonly resolve: HostResolver;
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The addresses after each resolution (also when unchanged). */
  onTargets(targets: readonly AggregatorTarget[]): void;
}

/** A refresh asked for on failure comes at most this often. */
const MIN_REFRESH_GAP_MS = 1000;

export class AggregatorResolver {
  /** Last known addresses per configured item. */
  private readonly known = new Map<string, readonly AggregatorTarget[]>();
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private lastRun = -Infinity;
  private closed = false;

  constructor(private readonly options: AggregatorResolverOptions) {}

  /** Resolves now and then every interval. */
  start(): Promise<void> {
    return this.refresh();
  }

  /** A stream failed: resolve again soon (at most once a second), the addresses may have moved. */
  refreshSoon(): void {
    if (this.running !== undefined || this.closed) return;
    const wait = this.lastRun + MIN_REFRESH_GAP_MS - this.options.clock.now();
    if (wait <= 0) {
      void this.refresh();
      return;
    }
    this.schedule(wait);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      void this.refresh();
    }, ms);
    this.timer.unref();
  }

  refresh(): Promise<void> {
    this.running ??= this.resolveAll().finally(() => {
      this.running = undefined;
      this.lastRun = this.options.clock.now();
      this.schedule(this.options.intervalMs);
    });
    return this.running;
  }

  private async resolveAll(): Promise<void> {
    await Promise.all(this.options.addresses.map((item) => this.resolveItem(item)));
    if (this.closed) return;
    this.options.onTargets([...this.known.values()].flat());
  }

  private async resolveItem(item: string): Promise<void> {
    const { host, port } = parseHostPort(item);
    if (isIP(host) !== 0) {
      this.known.set(item, [{ address: formatHostPort({ host, port }), host }]);
      return;
    }
    try {
      const ips = await this.options.resolve(host);
      if (ips.length === 0) throw new Error('no address');
      const next = ips.map((ip) => ({ address: formatHostPort({ host: ip, port }), host }));
      const before = (this.known.get(item) ?? []).map((t) => t.address).sort().join(',');
      const after = next.map((t) => t.address).sort().join(',');
      if (before !== after) this.options.logger.info({ name: item, addresses: next.map((t) => t.address) }, 'aggregator name resolved');
      this.known.set(item, next);
    } catch (err) {
      const kept = this.known.get(item) ?? [];
      this.options.logger.warn({ name: item, err: errorMessage(err), keeping: kept.map((t) => t.address) }, 'cannot resolve the aggregator name; keeping the addresses it had');
    }
  }
}

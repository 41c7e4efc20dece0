import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeUdpPort } from '../helpers/aeron-pipeline.js';
import { startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { startMediaDriver, startSubscriber } from './aeron-driver.js';
import type { MediaDriver, Subscriber } from './aeron-driver.js';

export const STREAM = 31;

/** Cleanups run after each test, last first (register with `cleanups.push`). */
export type Cleanups = Array<() => Promise<unknown>>;

export async function runCleanups(cleanups: Cleanups): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()?.().catch(() => undefined);
}

export const pendingEntries = (agg: AggregatorProcess): Promise<number> => agg.metric('mega_aggregator_spool_pending_entries');

export interface InteropPipeline {
  readonly port: number;
  /** The driver the subscribers use now (replaced by restartDriver). */
  driver(): MediaDriver;
  /** Starts an aggregator on the same spool and channel (a restart when one ran before). */
  start(): Promise<AggregatorProcess>;
  /** A basic_subscriber on the channel's endpoint; payloads are appended to `payloads`. */
  subscribe(payloads: string[]): Promise<Subscriber>;
  /** Stops the driver (SIGTERM) and starts a fresh one with the same environment. */
  restartDriver(): Promise<MediaDriver>;
}

/**
 * One aeronmd, a UDP port, a spool directory and the aggregator's environment: the aggregator
 * publishes `aeron:udp?endpoint=<host>:<port>|term-length=1m<channelExtra>` on STREAM.
 */
export async function interopPipeline(
  cleanups: Cleanups,
  o: { driverEnv?: Record<string, string>; channelExtra?: string; host?: string; aggregatorEnv?: Record<string, string> } = {},
): Promise<InteropPipeline> {
  const dir = await mkdtemp(join(tmpdir(), 'mc-interop-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const driverEnv = o.driverEnv ?? {};
  let driver: MediaDriver = await startMediaDriver(driverEnv);
  cleanups.push(() => driver.stop());
  const port = await freeUdpPort();
  const channel = `aeron:udp?endpoint=${o.host ?? '127.0.0.1'}:${port}${o.channelExtra ?? '|term-length=1m'}`;
  const env = {
    AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
    AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '20ms',
    AGGREGATOR_MAX_BATCH_SIZE: '200',
    AGGREGATOR_SHUTDOWN_TIMEOUT: '2s',
    AGGREGATOR_AERON_CONFIGURATION: JSON.stringify({ channel, stream_id: STREAM }),
    ...o.aggregatorEnv,
  };
  return {
    port,
    driver: () => driver,
    start: async () => {
      const agg = await startAggregator({ env });
      cleanups.push(() => agg.kill());
      return agg;
    },
    subscribe: async (payloads) => {
      const s = await startSubscriber(driver, `aeron:udp?endpoint=127.0.0.1:${port}`, STREAM, payloads);
      cleanups.push(() => s.stop('SIGKILL'));
      return s;
    },
    restartDriver: async () => {
      await driver.stop();
      driver = await startMediaDriver(driverEnv);
      return driver;
    },
  };
}

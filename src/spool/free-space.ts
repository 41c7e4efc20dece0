import { statfs } from 'node:fs/promises';
import { ConfigError, errorMessage } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { SpoolLog } from './spool-types.js';

/**
 * Free space on the spool's volume, as part of admission: an append is refused (MC_ERR_SPOOL_FULL, so
 * RESOURCE_EXHAUSTED to the collector) while it would eat into a reserve of free bytes, long before
 * the file system answers ENOSPC. The reserve keeps room for what must still be written when the
 * volume is nearly full: a new segment's header, `delivered.pos`, dead letters, other programs.
 *
 * statfs is sampled at most every `maxAgeMs` (from admission) and after the spool frees space; bytes
 * the spool writes in between are subtracted from the last sample, so the estimate only errs on the
 * safe side for the spool's own writes.
 */

export interface VolumeStats {
  /** Size of the file system. */
  readonly totalBytes: number;
  /** Bytes an unprivileged writer may still allocate (statfs bavail × bsize). */
  readonly availableBytes: number;
}

export type StatVolume = (dir: string) => Promise<VolumeStats>;

export const statVolume: StatVolume = async (dir) => {
  const s = await statfs(dir);
  return { totalBytes: s.blocks * s.bsize, availableBytes: s.bavail * s.bsize };
};

const MiB = 1024 * 1024;

/** The reserve when AGGREGATOR_SPOOL_MIN_FREE_BYTES is not set: 5% of the volume, at most 256 MiB. */
export function defaultMinFreeBytes(totalBytes: number): number {
  return Math.min(256 * MiB, Math.ceil(totalBytes * 0.05));
}

/**
 * The segment size actually used: the configured one, but at most a quarter of the spool bound and a
 * quarter of the volume, so that a spool on a volume smaller than one configured segment still rolls,
 * and deleting delivered segments always frees a useful share of the volume.
 */
export function effectiveSegmentBytes(configured: number, maxBytes: number, volumeBytes: number | undefined, minimum: number): number {
  const caps = [configured, Math.floor(maxBytes / 4)];
  if (volumeBytes !== undefined && volumeBytes > 0) caps.push(Math.floor(volumeBytes / 4));
  return Math.max(minimum, Math.min(...caps));
}

export class FreeSpace {
  private available: number;
  private sampledAt: number;
  /** Bytes the spool wrote since the last sample started (not all of them are in it). */
  private writtenSince = 0;
  private writtenTotal = 0;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    readonly minFreeBytes: number,
    initial: VolumeStats,
    private readonly stat: StatVolume,
    private readonly clock: Clock,
    private readonly maxAgeMs = 250,
  ) {
    this.available = initial.availableBytes;
    this.sampledAt = clock.now();
  }

  /** Estimated free bytes on the volume now. */
  get availableBytes(): number {
    return Math.max(0, this.available - this.writtenSince);
  }

  /** Whether `bytes` more may be written without touching the reserve; starts a fresh sample when the last one is old. */
  admits(bytes: number): boolean {
    if (this.clock.now() - this.sampledAt >= this.maxAgeMs) void this.refresh();
    return this.available - this.writtenSince - bytes >= this.minFreeBytes;
  }

  /** The spool wrote (or is about to write) `bytes`. */
  noteWritten(bytes: number): void {
    this.writtenSince += bytes;
    this.writtenTotal += bytes;
  }

  /** Samples statfs again (one sample at a time); a failed sample keeps the old estimate. Never rejects. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      const before = this.writtenTotal;
      try {
        const s = await this.stat(this.dir);
        // Writes made while statfs ran may be missing from the sample: keep counting them.
        this.available = s.availableBytes;
        this.writtenSince = this.writtenTotal - before;
      } catch {
        // keep the estimate; the next admission tries again
      } finally {
        this.sampledAt = this.clock.now();
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}

/** Free-space admission for a spool: the segment size to use, and the admission (undefined without statfs). */
export interface VolumeSetup {
  readonly segmentBytes: number;
  readonly freeSpace: FreeSpace | undefined;
}

/**
 * Reads the volume once at open and sizes segments by it (effectiveSegmentBytes). Throws ConfigError
 * when the reserve leaves no room on the volume. When statfs fails, admission checks the bound only.
 */
export async function setUpVolume(
  dir: string,
  o: {
    readonly maxBytes: number;
    readonly segmentBytes: number;
    readonly minSegmentBytes: number;
    readonly minFreeBytes: number | undefined;
    readonly statVolume: StatVolume;
    readonly clock: Clock;
    readonly log: SpoolLog;
  },
): Promise<VolumeSetup> {
  let volume: VolumeStats;
  try {
    volume = await o.statVolume(dir);
  } catch (err) {
    o.log.warn({ dir, err: errorMessage(err) }, 'spool: cannot read the free space of the volume (statfs); admission checks AGGREGATOR_SPOOL_MAX_BYTES only');
    return { segmentBytes: effectiveSegmentBytes(o.segmentBytes, o.maxBytes, undefined, o.minSegmentBytes), freeSpace: undefined };
  }
  const segmentBytes = effectiveSegmentBytes(o.segmentBytes, o.maxBytes, volume.totalBytes, o.minSegmentBytes);
  const minFreeBytes = o.minFreeBytes ?? defaultMinFreeBytes(volume.totalBytes);
  if (minFreeBytes >= volume.totalBytes) {
    throw new ConfigError([
      `AGGREGATOR_SPOOL_MIN_FREE_BYTES: keeping ${minFreeBytes} bytes free leaves no room on the spool's volume of ${volume.totalBytes} bytes (${dir})`,
    ]);
  }
  if (segmentBytes < o.segmentBytes && segmentBytes === Math.max(o.minSegmentBytes, Math.floor(volume.totalBytes / 4))) {
    o.log.warn(
      { dir, volumeBytes: volume.totalBytes, configuredSegmentBytes: o.segmentBytes, segmentBytes },
      'spool: the volume is small for the configured segment size; using segments of a quarter of the volume',
    );
  }
  return { segmentBytes, freeSpace: new FreeSpace(dir, minFreeBytes, volume, o.statVolume, o.clock) };
}

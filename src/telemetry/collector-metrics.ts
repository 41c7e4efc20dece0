import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The collector's Prometheus metrics, in one registry (not the global one, so tests can build
 * several). Names follow Prometheus conventions: `mega_collector_<what>[_<unit>]`, unit last (`_bytes`),
 * every counter ends in `_total`, closed label sets start at zero. "Acknowledged" counters move only after the
 * aggregator's OK. Per-file series carry the label `path` (the path the file was found under);
 * rejections carry a closed set of reasons. Counters are moved once per read buffer or per chunk,
 * never per line.
 */
export type RotationKind = 'rename' | 'delete' | 'copytruncate';
/** invalid: INVALID_ARGUMENT from the aggregator (the chunk's lines are dropped). */
export type ChunkRejectReason = 'invalid';
/**
 * Why a stream to an aggregator was replaced: error (broken, refused, unreachable), goaway (the
 * aggregator answered UNAVAILABLE or ended the stream: shutting down), removed (its address left the
 * DNS answer), rebalance (back to the collector's preferred aggregator).
 */
export const MOVE_REASONS = ['error', 'goaway', 'removed', 'rebalance'] as const;
export type MoveReason = (typeof MOVE_REASONS)[number];

export interface CollectorMetrics {
  readonly registry: Registry;
  readonly linesRead: Counter<'path'>;
  readonly bytesRead: Counter<'path'>;
  readonly linesAcked: Counter<'path'>;
  readonly bytesAcked: Counter<'path'>;
  readonly linesSplit: Counter;
  readonly linesDropped: Counter<'reason'>;
  readonly bytesBehind: Gauge<'path'>;
  readonly openFiles: Gauge;
  readonly rotations: Counter<'kind'>;
  readonly truncations: Counter;
  readonly reconnects: Counter<'reason'>;
  readonly failovers: Counter<'reason'>;
  readonly discoveryScans: Counter;
  /** 1 for the aggregator address the stream goes to. */
  readonly aggregator: Gauge<'address'>;
  readonly checkpointWrites: Counter;
  readonly checkpointErrors: Counter;
  readonly chunksSent: Counter;
  readonly chunksAcked: Counter;
  readonly chunksRejected: Counter<'reason'>;
  readonly inflightBytes: Gauge;
  /** Highest in-flight bytes seen since start (checked after every read). */
  readonly inflightPeakBytes: Gauge;
  /** From a file's birth (statx btime) to its first open, for files found while running. */
  readonly discoveryDelay: Histogram;
  readonly readingPaused: Gauge;
  readonly connected: Gauge;
  /** Full collections run because the old space grew past its bound (src/util/old-space-bound.ts). */
  readonly oldSpaceCollections: Counter;
  /** Where the scrape-time gauges read from (set once the collector runs). */
  setProbe(probe: CollectorProbe): void;
}

export interface CollectorProbe {
  inflightBytes(): number;
  paused(): boolean;
  connected(): boolean;
  /** The aggregator address of the current stream (undefined between streams). */
  aggregator(): string | undefined;
  openFiles(): number;
  /** Bytes between each tailed file's read offset and its end, by path. */
  behind(): Iterable<readonly [string, number]>;
}

/**
 * How often the event-loop delay histogram (`nodejs_eventloop_lag_*`) samples, in ms. prom-client's
 * default of 10 ms woke an idle collector ~200 times a second (a timer beside every application);
 * 100 ms wakes it 20 times, and a stall longer than that is still measured whole.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

export function createCollectorMetrics(options: { defaultMetrics?: boolean } = {}): CollectorMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const registers = [registry];
  let probe: CollectorProbe | undefined;
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> =>
    new Counter<L>({ name: `mega_collector_${name}_total`, help, labelNames, registers });
  const rotations = counter('rotations', 'Rotations seen, by kind (rename, delete, copytruncate)', ['kind']);
  const chunksRejected = counter('chunks_rejected', 'Chunks the aggregator refused for good, by reason', ['reason']);
  const reconnects = counter('reconnects', 'Times the stream to an aggregator was replaced, by reason (error, goaway, removed, rebalance)', ['reason']);
  const failovers = counter('failovers', 'Times the next stream went to another aggregator than the last, by reason (error, goaway, removed, rebalance)', ['reason']);
  const discoveryScans = counter('discovery_scans', 'Glob scans completed (at start, every COLLECTOR_RESCAN_INTERVAL, and after events such as a truncation)');
  const linesDropped = counter('lines_dropped', 'Entries dropped because the aggregator rejected their chunk as invalid', ['reason']);
  // Closed label sets start at zero, so a dashboard sees the series before the first event.
  for (const kind of ['rename', 'delete', 'copytruncate'] as const) rotations.inc({ kind }, 0);
  chunksRejected.inc({ reason: 'invalid' }, 0);
  linesDropped.inc({ reason: 'invalid' }, 0);
  for (const reason of MOVE_REASONS) {
    reconnects.inc({ reason }, 0);
    failovers.inc({ reason }, 0);
  }
  return {
    registry,
    setProbe: (p) => {
      probe = p;
    },
    linesRead: counter('lines_read', 'Entries cut from files (a split or joined entry counts once per piece)', ['path']),
    bytesRead: counter('read_bytes', 'Line bytes cut from files (without newlines)', ['path']),
    linesAcked: counter('lines_acknowledged', 'Entries acknowledged by the aggregator (durable there)', ['path']),
    bytesAcked: counter('acknowledged_bytes', 'Line bytes acknowledged by the aggregator', ['path']),
    linesSplit: counter('lines_split', 'Pieces cut from lines longer than COLLECTOR_MAX_LINE_BYTES'),
    linesDropped,
    bytesBehind: new Gauge({
      name: 'mega_collector_behind_bytes',
      help: 'Bytes between the read offset and the end of each tailed file',
      labelNames: ['path'],
      registers,
      collect() {
        this.reset();
        if (probe === undefined) return;
        for (const [path, behind] of probe.behind()) this.set({ path }, behind);
      },
    }),
    openFiles: new Gauge({
      name: 'mega_collector_open_files',
      help: 'Files open for tailing',
      registers,
      collect() {
        if (probe !== undefined) this.set(probe.openFiles());
      },
    }),
    rotations,
    truncations: counter('truncations', 'Files found truncated (while running or while stopped)'),
    reconnects,
    failovers,
    discoveryScans,
    aggregator: new Gauge({
      name: 'mega_collector_aggregator',
      help: '1 for the aggregator address (label address) the stream currently goes to; no series between streams',
      labelNames: ['address'],
      registers,
      collect() {
        this.reset();
        const address = probe?.aggregator();
        if (address !== undefined) this.set({ address }, 1);
      },
    }),
    checkpointWrites: counter('checkpoint_writes', 'Checkpoint files written (durably)'),
    oldSpaceCollections: counter('old_space_collections', "Full garbage collections run because V8's old space grew 2 MiB past what the last one left live"),
    checkpointErrors: counter('checkpoint_errors', 'Failed checkpoint writes or unusable checkpoint files'),
    chunksSent: counter('chunks_sent', 'Chunks written to the stream (resends included)'),
    chunksAcked: counter('chunks_acknowledged', 'Chunks acknowledged OK'),
    chunksRejected,
    inflightBytes: new Gauge({
      name: 'mega_collector_inflight_bytes',
      help: 'Bytes read but not yet acknowledged',
      registers,
      collect() {
        if (probe !== undefined) this.set(probe.inflightBytes());
      },
    }),
    inflightPeakBytes: new Gauge({
      name: 'mega_collector_inflight_peak_bytes',
      help: 'Highest bytes read but not yet acknowledged since start (COLLECTOR_MAX_INFLIGHT_BYTES holds to within one read)',
      registers,
    }),
    discoveryDelay: new Histogram({
      name: 'mega_collector_discovery_delay_seconds',
      help: "From a file's creation (birth time) to its first open, for files found while running (a file moved in keeps its older birth time)",
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
      registers,
    }),
    readingPaused: new Gauge({
      name: 'mega_collector_reading_paused',
      help: '1 while reading is paused because COLLECTOR_MAX_INFLIGHT_BYTES is reached',
      registers,
      collect() {
        if (probe !== undefined) this.set(probe.paused() ? 1 : 0);
      },
    }),
    connected: new Gauge({
      name: 'mega_collector_connected',
      help: '1 while a stream to the aggregator is acknowledging chunks',
      registers,
      collect() {
        if (probe !== undefined) this.set(probe.connected() ? 1 : 0);
      },
    }),
  };
}

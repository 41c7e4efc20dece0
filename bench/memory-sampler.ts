/**
 * Where a program's resident memory goes, sampled during a run from its own /metrics (prom-client's
 * default metrics): the V8 heap (total, and its young generation) against memory outside the heap
 * (`external`: Buffers and other ArrayBuffers, e.g. chunks in flight and gRPC/HTTP/2 buffers). Keeps the
 * peak of each. Opt-in (BENCH_MEMORY_BREAKDOWN=1): each scrape costs the program a little CPU.
 */

export interface MemoryPeaks {
  rssMiB: number;
  heapTotalMiB: number;
  heapUsedMiB: number;
  newSpaceMiB: number;
  externalMiB: number;
}

const METRICS: ReadonlyArray<[keyof MemoryPeaks, string]> = [
  ['rssMiB', 'process_resident_memory_bytes'],
  ['heapTotalMiB', 'nodejs_heap_size_total_bytes'],
  ['heapUsedMiB', 'nodejs_heap_size_used_bytes'],
  ['newSpaceMiB', 'nodejs_heap_space_size_total_bytes{space="new"}'],
  ['externalMiB', 'nodejs_external_memory_bytes'],
];

async function sample(port: number, peaks: MemoryPeaks): Promise<void> {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (const line of body.split('\n')) {
    for (const [key, name] of METRICS) {
      if (!line.startsWith(`${name} `)) continue;
      const mib = Number(line.slice(name.length + 1)) / 2 ** 20;
      if (mib > peaks[key]) peaks[key] = mib;
    }
  }
}

export interface MemorySampler {
  stop(): Promise<MemoryPeaks>;
}

/** Samples the /metrics of `port` every `everyMs` until stopped; failed scrapes are skipped. */
export function sampleMemory(port: number, everyMs = 250): MemorySampler {
  const peaks: MemoryPeaks = { rssMiB: 0, heapTotalMiB: 0, heapUsedMiB: 0, newSpaceMiB: 0, externalMiB: 0 };
  let pending: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    pending = pending.then(() => sample(port, peaks)).catch(() => undefined);
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await pending.then(() => sample(port, peaks)).catch(() => undefined);
      return peaks;
    },
  };
}

export function formatPeaks(program: string, p: MemoryPeaks): string {
  return (
    `${program}: peak RSS ${p.rssMiB.toFixed(0)} MiB (sampled), V8 heap total ${p.heapTotalMiB.toFixed(0)} MiB ` +
    `(used ${p.heapUsedMiB.toFixed(0)}, young generation ${p.newSpaceMiB.toFixed(0)}), outside the heap (Buffers) ${p.externalMiB.toFixed(0)} MiB`
  );
}

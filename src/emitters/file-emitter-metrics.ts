import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import { FILE_REOPEN_REASONS } from './file-emitter.js';
import type { FileReopenReason } from './file-emitter.js';

const NAME = 'mega_aggregator_file_reopens_total';

/**
 * `mega_aggregator_file_reopens_total{reason}`: how often the file emitter let go of its output and
 * opened the path again, by reason (every reason present at zero). `renamed`/`deleted` mean a batch
 * found its file moved away and was written again at the path.
 */
export function fileReopenCounter(registry: Registry | undefined): (reason: FileReopenReason) => void {
  const existing = registry?.getSingleMetric(NAME);
  const counter =
    existing instanceof Counter
      ? (existing as Counter<'reason'>)
      : new Counter({
          name: NAME,
          help: 'Times the file emitter closed its output and opened the path again, by reason (renamed, deleted, signal, time)',
          labelNames: ['reason'],
          registers: registry === undefined ? [] : [registry],
        });
  for (const reason of FILE_REOPEN_REASONS) counter.labels({ reason }).inc(0);
  return (reason) => counter.labels({ reason }).inc();
}

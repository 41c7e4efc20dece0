import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileOpener } from '../../src/collector/file-opener.js';
import type { OpenerHost } from '../../src/collector/file-opener.js';
import { fdReader, readHeadSync } from '../../src/collector/file-identity.js';
import { FileRegistry } from '../../src/collector/file-registry.js';
import type { FileTailer } from '../../src/collector/tail-file.js';
import { loadCollectorConfig } from '../../src/config/collector-config.js';
import { createCollectorMetrics } from '../../src/telemetry/collector-metrics.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { systemClock } from '../../src/util/clock.js';

/**
 * A file read to its end (a rotated copy, drained) is finished while the open queue decides about the
 * same file (the globs name the copy too). It must be found either as tailed or as retired at its
 * offset: in 3 of 11 runs of the rotation test under load, finish() had removed it from the tailers and
 * was still waiting on an fstat in the thread pool before retiring it, the copy looked new and its 480
 * lines were sent again.
 */
let dir: string;
const fds: number[] = [];

afterEach(() => {
  for (const fd of fds.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // closed by the opener
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function host(): OpenerHost {
  const config = loadCollectorConfig({
    COLLECTOR_REMOTE_ADDRESS: '127.0.0.1:9',
    COLLECTOR_FILES: join(dir, '*'),
    COLLECTOR_STATE_DIR: join(dir, 'state'),
    COLLECTOR_START_AT: 'end',
  });
  return {
    config,
    clock: systemClock,
    log: silentLogger(),
    metrics: createCollectorMetrics({ defaultMetrics: false }),
    registry: new FileRegistry(() => systemClock.now()),
    tailers: new Map<string, FileTailer>(),
    forceBeginning: () => false,
    rescan: () => undefined,
    checkpoint: () => Promise.resolve(),
    wake: () => undefined,
    maxLineBytes: () => 1024,
    closed: () => undefined,
  };
}

describe('FileOpener.finish', () => {
  it('moves a finished file from the tailers to the retired cursors in one step, so a decision about it meanwhile resumes it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'mc-finish-'));
    const path = join(dir, 'app.log.c2');
    const text = Array.from({ length: 480 }, (_, i) => `beta ${String(i).padStart(8, '0')} ${'p'.repeat(60)}\n`).join('');
    writeFileSync(path, text);
    const h = host();
    const opener = new FileOpener(h);
    await opener.open(path, true); // COLLECTOR_START_AT=end: its cursor is at its end, as if read
    const [key, tailer] = [...h.tailers][0] as [string, FileTailer];
    expect(tailer.cursor.readOffset).toBe(text.length);

    const finished = opener.finish(key, tailer);
    // What the open queue does when discovery reports the same file now.
    const fd = openSync(path, 'r');
    fds.push(fd);
    const st = fstatSync(fd);
    const decision = await h.registry.decide({ path, dev: st.dev, ino: st.ino, size: st.size, head: readHeadSync(fd), read: fdReader(fd) }, []);
    await finished;

    expect(decision.kind).toBe('resume');
    expect(decision.kind === 'resume' ? [decision.how, decision.cursor.readOffset] : []).toEqual(['same-file', text.length]);
  });
});

import { setFlagsFromString } from 'node:v8';

/**
 * Imported first by the collector's program (cmd/collector/main.ts), before anything else is loaded:
 * keeps V8's young generation at its initial 1 MiB semi-spaces for the whole run. By default V8
 * doubles them up to 16 MiB as objects survive scavenges (8 MiB already while the program loads), up
 * to 32 MiB of RSS for a process whose data path allocates little that lives (bench/README.md, "What
 * takes the collector's RSS"). `--max-semi-space-size` would say the same on node's command line, but
 * `node dist/cmd/collector/main.js` has none, and V8 reads that flag only when the heap is set up; the
 * growth factor it reads each time it would grow, so setting it now takes effect. More scavenges are
 * the price (measured: within the run-to-run spread of the collector's CPU per million lines).
 */
export const YOUNG_GENERATION_FLAGS = ['--semi-space-growth-factor=1'] as const;

// The program's launcher sets them too, before it compiles the bundle (src/util/bundle-launch.ts).
for (const flag of YOUNG_GENERATION_FLAGS) setFlagsFromString(flag);

/**
 * `npm run build` (support/bundle-programs.ts) runs this under a program's first-line options:
 *   node <options> dist/support/write-code-cache.js <bundle> <cache> [<v8 flag> ...]
 * It compiles the bundle as the program's launcher does (with the V8 flags the program sets for
 * itself), runs it with `--version` (the program loads everything it loads at every start, then prints
 * its version), and writes V8's code cache of what that compiled as the process exits. It imports
 * nothing else: whatever it loaded could change V8's flags, and V8 would refuse the cache.
 */
import { compileBundle, writeCodeCacheAtExit } from '../src/util/bundle-launch.js';

const [bundle, cache, ...v8Flags] = process.argv.slice(2);
if (bundle === undefined || cache === undefined) {
  process.stderr.write('usage: write-code-cache.js <bundle> <cache> [<v8 flag> ...]\n');
  process.exit(2);
}
const compiled = compileBundle({ bundle, v8Flags });
writeCodeCacheAtExit(compiled, cache);
process.argv.splice(2, process.argv.length - 2, '--version');
compiled.run();

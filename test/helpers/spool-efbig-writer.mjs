// Child program for the spool write-failure test: run under `ulimit -f` so that writes past the limit
// fail with EFBIG (Node ignores SIGXFSZ). Appends 4 KiB records until one fails, then a small one that
// still fits, and prints JSON: the acked positions, the error code, and whether the spool recovered.
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { Spool } from '../../dist/src/spool/spool.js';

const [dir] = process.argv.slice(2);
const spool = await Spool.open({ dir, maxBytes: 1 << 30, segmentBytes: 1 << 20 });
const acked = [];
let error;
for (let i = 0; i < 1000 && error === undefined; i++) {
  // Several appends in one group, so a failure hits a group with some bytes written.
  const batch = [0, 1, 2].map((k) => spool.append(Buffer.alloc(4096, (i * 3 + k) & 0xff), 1));
  const results = await Promise.allSettled(batch);
  for (const [k, r] of results.entries()) {
    if (r.status === 'fulfilled') acked.push({ fill: (i * 3 + k) & 0xff, ...r.value });
    else error ??= { code: r.reason.code, message: r.reason.message };
  }
}
let smallAfter;
try {
  smallAfter = await spool.append(Buffer.from('small'), 1);
} catch (err) {
  smallAfter = { error: err.code };
}
await spool.close();
process.stdout.write(JSON.stringify({ acked, error, smallAfter }) + '\n');

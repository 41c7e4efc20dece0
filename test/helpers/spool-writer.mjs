// Child program for the spool crash test (test/integration/spool-crash.test.ts). Plain ESM so that it
// runs from the compiled dist/ without a TypeScript loader (`npm run build` first).
//
//   node test/helpers/spool-writer.mjs DIR FIRST_SEQ SEGMENT_BYTES DELIVER(0|1)
//
// Appends records with 8 concurrent appenders; prints `A <seq>` for every acknowledged record. With
// DELIVER=1, a reader marks records delivered as it reads them and prints `D <seq>` after each mark.
// Record <seq> holds lines `seq:<seq>:<i>:` padded with a byte pattern derived from seq, so that the
// parent can check every record it reads back is intact. Runs until killed.
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { setTimeout as delay } from 'node:timers/promises';
import { Spool } from '../../dist/src/spool/spool.js';
import { EntryBatchWriter, RunHead, decodeEntries, encodeBatchHeader } from '../../dist/src/wire/entry-batch.js';

const [dir, firstSeqArg, segmentBytesArg, deliverArg] = process.argv.slice(2);
const spool = await Spool.open({ dir, maxBytes: 256 * 1024 * 1024, segmentBytes: Number(segmentBytesArg) });
const head = new RunHead('/var/log/crash.log', 'dev:1:ino:1');
const header = encodeBatchHeader('crash-writer', []);

function makeRecord(seq) {
  const lines = 1 + (seq % 13);
  const lineBytes = 50 + ((seq * 7919) % 4000);
  const w = new EntryBatchWriter(header);
  for (let i = 0; i < lines; i++) {
    const prefix = Buffer.from(`seq:${seq}:${i}:`);
    const line = Buffer.alloc(Math.max(lineBytes, prefix.length), (seq + i) & 0xff);
    prefix.copy(line);
    w.addLine(head, line, 0, line.length, seq * 100 + i, BigInt(seq));
  }
  return { data: w.finish(), entries: lines };
}

let seq = Number(firstSeqArg);
process.stdout.write(`READY ${process.pid}\n`);

async function appender() {
  for (;;) {
    const s = seq++;
    const { data, entries } = makeRecord(s);
    await spool.append(data, entries);
    process.stdout.write(`A ${s}\n`); // stdout is a pipe: synchronous on Linux, so it is out before a kill
  }
}

async function deliverer() {
  const reader = spool.reader();
  for (;;) {
    const rec = await reader.next();
    const first = decodeEntries(rec.data)[0];
    const s = Number(first.line.toString('latin1').split(':')[1]);
    spool.markDelivered({ ...rec.next, entry: 0 });
    process.stdout.write(`D ${s}\n`);
    await delay(2); // lag behind the appenders so segments pile up
  }
}

for (let i = 0; i < 8; i++) appender().catch((err) => { process.stderr.write(`append failed: ${err.stack}\n`); process.exit(3); });
if (deliverArg === '1') deliverer().catch((err) => { process.stderr.write(`deliver failed: ${err.stack}\n`); process.exit(4); });

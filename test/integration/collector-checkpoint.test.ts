import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync, appendFileSync, statSync, openSync, closeSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { crc32c } from '@node-rs/crc32';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../src/collector/checkpoint-store.js';
import type { CheckpointRecord } from '../../src/collector/checkpoint-store.js';
import { fdReader, fingerprintOf, readHead } from '../../src/collector/file-identity.js';
import type { FileCursor } from '../../src/collector/file-cursor.js';
import { FileRegistry } from '../../src/collector/file-registry.js';
import type { Candidate } from '../../src/collector/file-registry.js';
import { TailFixture } from '../helpers/collector-tail-fixture.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mc-ckpt-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const record = (offset: number): CheckpointRecord => ({
  fileId: 'f1',
  path: '/var/log/a.log',
  dev: 1,
  ino: 2,
  fpLength: 10,
  fpCrc: 3,
  offset,
  hash: 4,
  hashLength: 5,
  retired: false,
});

describe('CheckpointStore', () => {
  it('round-trips records and keeps the previous file as a fallback', async () => {
    const store = new CheckpointStore(dir);
    expect(await store.load()).toEqual({ records: [], source: 'none' });
    await store.save([record(10)]);
    await store.save([record(20)]);
    expect(await store.load()).toEqual({ records: [record(20)], source: 'main' });
    expect(readdirSync(dir).sort()).toEqual(['checkpoints.json', 'checkpoints.json.prev']);
  });

  it('a corrupt file is reported and the older one used (duplicates, never loss)', async () => {
    const store = new CheckpointStore(dir);
    await store.save([record(10)]);
    await store.save([record(20)]);
    const text = readFileSync(store.file, 'utf8').replace('"offset":20', '"offset":99');
    writeFileSync(store.file, text);
    const loaded = await store.load();
    expect(loaded.records).toEqual([record(10)]);
    expect(loaded.source).toBe('prev');
    expect(loaded.problem).toMatch(/checksum/);
  });

  it('regression: after recovering from a corrupt file, a crash in the middle of the next save still leaves the older copy usable', async () => {
    const store = new CheckpointStore(dir);
    await store.save([record(10)]);
    await store.save([record(20)]);
    writeFileSync(store.file, '{"version":1,"crc":1,"rec');
    expect((await store.load()).records).toEqual([record(10)]);
    // The next save's first step (the current file, if any, becomes .prev), then a crash before its
    // temp file is renamed in.
    if (existsSync(store.file)) renameSync(store.file, `${store.file}.prev`);
    const after = await store.load();
    expect(after.records).toEqual([record(10)]);
    expect(after.source).toBe('prev');
  });

  it('garbage in both files: reported, moved aside, empty result; the next save works', async () => {
    const store = new CheckpointStore(dir);
    writeFileSync(store.file, '{"version":1,');
    writeFileSync(`${store.file}.prev`, 'nonsense');
    const loaded = await store.load();
    expect(loaded.records).toEqual([]);
    expect(loaded.problem).toBeDefined();
    expect(readdirSync(dir).some((f) => f.startsWith('checkpoints.json.corrupt-'))).toBe(true);
    await store.save([record(1)]);
    expect((await store.load()).records).toEqual([record(1)]);
  });
});

describe('FileRegistry decisions', () => {
  let fx: TailFixture;
  afterEach(() => fx.cleanup());

  async function candidate(path: string): Promise<Candidate & { close(): void }> {
    const fd = openSync(path, 'r');
    const st = statSync(path);
    return { path, dev: st.dev, ino: st.ino, size: st.size, head: await readHead(fd), read: fdReader(fd), close: () => closeSync(fd) };
  }

  /** Tails `name` fully and returns its records as a restarted collector would load them. */
  async function readAll(name: string): Promise<CheckpointRecord[]> {
    const t = fx.tail(name);
    while ((await t.step(fx.builder, fx.buf)).status === 'data');
    fx.builder.seal();
    for (const c of fx.chunks) for (const r of c.ranges) r.cursor.ack(r);
    return [FileRegistry.toRecord(t.cursor)];
  }

  it('resumes the same inode at its checkpoint after a restart', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('a.log'), 'x'.repeat(2000) + '\n');
    const records = await readAll('a.log');
    appendFileSync(fx.path('a.log'), 'more\n');
    const reg = new FileRegistry(() => 0);
    reg.restore(records);
    const c = await candidate(fx.path('a.log'));
    const d = await reg.decide(c, []);
    c.close();
    expect(d.kind).toBe('resume');
    if (d.kind === 'resume') expect(d.cursor.readOffset).toBe(2001);
  });

  it('truncation and regrowth while stopped is detected by the hash before the checkpoint', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('a.log'), `${'h'.repeat(50)}\n${'a'.repeat(100)}\n`);
    const records = await readAll('a.log');
    truncateSync(fx.path('a.log'), 0);
    appendFileSync(fx.path('a.log'), `${'h'.repeat(50)}\n${'b'.repeat(200)}\n`);
    const reg = new FileRegistry(() => 0);
    reg.restore(records);
    const c = await candidate(fx.path('a.log'));
    const d = await reg.decide(c, []);
    c.close();
    expect(d).toMatchObject({ kind: 'new', truncatedWhileAway: true });
  });

  it('a copytruncate copy continues from the truncated cursor offset under the old file id', async () => {
    fx = new TailFixture();
    const content = Array.from({ length: 30 }, (_, i) => `line ${i} ${'p'.repeat(60)}\n`).join('');
    writeFileSync(fx.path('a.log'), content);
    const t = fx.tail('a.log');
    await t.step(fx.builder, fx.buf);
    const readTo = t.cursor.readOffset;
    appendFileSync(fx.path('a.log'), 'unread tail line\n');
    copyFileSync(fx.path('a.log'), fx.path('a.log.1'));
    truncateSync(fx.path('a.log'), 0);
    expect((await t.step(fx.builder, fx.buf)).status).toBe('truncated');
    t.cursor.markTruncated(); // as FileOpener.truncated() does
    fx.registry.retire(t.cursor);
    const c = await candidate(fx.path('a.log.1'));
    const d = await fx.registry.decide(c, []);
    c.close();
    expect(d.kind).toBe('resume');
    if (d.kind === 'resume') {
      expect(d.how).toBe('copy');
      expect(d.cursor.fileId).toBe(t.cursor.fileId);
      expect(d.cursor.readOffset).toBe(readTo);
    }
  });

  it('a copy of a file still tailed is parked; a reused inode with other content is new (counted as replaced)', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('a.log'), 'q'.repeat(3000));
    const t = fx.tail('a.log');
    await t.step(fx.builder, fx.buf);
    copyFileSync(fx.path('a.log'), fx.path('copy.log'));
    const c = await candidate(fx.path('copy.log'));
    expect(await fx.registry.decide(c, [{ cursor: t.cursor, read: fdReader(t.fd) }])).toEqual({ kind: 'parked' });
    c.close();
    const reg = new FileRegistry(() => 0);
    reg.restore([{ ...FileRegistry.toRecord(t.cursor), offset: 100, fpCrc: fingerprintOf(Buffer.from('other')).crc }]);
    const c2 = await candidate(fx.path('a.log'));
    expect(await reg.decide(c2, [])).toMatchObject({ kind: 'new', truncatedWhileAway: true });
    c2.close();
  });
  it('regression: a restart with more than 1024 checkpointed files resumes every one of them', async () => {
    fx = new TailFixture();
    const n = 1100;
    const records: CheckpointRecord[] = [];
    for (let i = 0; i < n; i++) {
      const path = fx.path(`f${i}.log`);
      const text = Buffer.from(`file ${i} line\n`);
      writeFileSync(path, text);
      const st = statSync(path);
      const fp = fingerprintOf(text);
      records.push({ fileId: `id${i}`, path, dev: st.dev, ino: st.ino, fpLength: fp.length, fpCrc: fp.crc, offset: text.length, hash: crc32c(text), hashLength: text.length, retired: false });
      appendFileSync(path, 'written while stopped\n');
    }
    const reg = new FileRegistry(() => 0);
    reg.restore(records);
    const resumed: string[] = [];
    for (let i = 0; i < n; i++) {
      const c = await candidate(fx.path(`f${i}.log`));
      const d = await reg.decide(c, []);
      c.close();
      if (d.kind === 'resume' && d.cursor.readOffset === records[i]?.offset) resumed.push(d.cursor.fileId);
    }
    expect(resumed.length).toBe(n);
  });
  it('a checkpoint of a file that was deleted when finished is not resumed by a new file on its reused inode, also after a restart', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('a.log'), 'header\n');
    const [rec] = await readAll('a.log');
    appendFileSync(fx.path('a.log'), 'body\n');
    const gone = { ...(rec as CheckpointRecord), gone: true };
    const store = new CheckpointStore(dir);
    await store.save([gone]);
    const reg = new FileRegistry(() => 0);
    reg.restore((await store.load()).records);
    expect(FileRegistry.toRecord(reg.retiredCursors[0] as FileCursor).gone).toBe(true);
    const c = await candidate(fx.path('a.log'));
    const d = await reg.decide(c, []);
    c.close();
    expect(d).toEqual({ kind: 'new', truncatedWhileAway: false });
  });
});

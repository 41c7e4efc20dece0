import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileEmitter } from '../../src/emitters/file-emitter.js';
import type { EntryJson } from '../../src/emitters/entry-json.js';
import { decodeEntries } from '../../src/wire/entry-batch.js';
import { buildEntries } from '../helpers/ingest-client.js';
import { arrayBatch } from '../../src/emitters/array-batch.js';

const signal = new AbortController().signal;

function batchOf(lines: Buffer[], id = 1) {
  return arrayBatch(id, decodeEntries(buildEntries(lines.map((data, i) => ({ data, offset: i * 100 })), { tags: [{ key: 'env', value: 'test' }] }).entries));
}

describe('file emitter', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-file-emitter-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('raw: appends each entry byte for byte plus a newline, after what the file held', async () => {
    const path = join(dir, 'out.log');
    const e = new FileEmitter({ path });
    const lines = [Buffer.from('plain'), Buffer.from([0xff, 0x00, 0xc3, 0x28]), Buffer.from(''), Buffer.from('crlf\r')];
    expect(await e.emit(batchOf(lines), signal)).toEqual({ kind: 'ok' });
    expect(await e.emit(batchOf([Buffer.from('second batch')], 2), signal)).toEqual({ kind: 'ok' });
    await e.close();
    await e.close(); // idempotent
    const want = Buffer.concat([...lines.flatMap((l) => [l, Buffer.from('\n')]), Buffer.from('second batch\n')]);
    expect((await readFile(path)).equals(want)).toBe(true);
    // A new emitter appends, it does not truncate.
    const again = new FileEmitter({ path, fsync: true });
    await again.emit(batchOf([Buffer.from('third')]), signal);
    await again.close();
    expect((await readFile(path)).equals(Buffer.concat([want, Buffer.from('third\n')]))).toBe(true);
  });

  it('json: one object per line with timestamp, source, tags and line or line_base64', async () => {
    const path = join(dir, 'out.json');
    const e = new FileEmitter({ path, format: 'json' });
    await e.emit(batchOf([Buffer.from('héllo "q"'), Buffer.from([0xff, 0xfe])]), signal);
    await e.close();
    const docs = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as EntryJson);
    expect(docs[0]).toMatchObject({
      line: 'héllo "q"',
      source: { collector_id: 'test-collector', path: '/var/log/test.log', file_id: 'file-1', offset: 0 },
      tags: { env: 'test' },
      timestamp: '2023-11-14T22:13:20.000000000Z',
    });
    expect(docs[1]?.line).toBeUndefined();
    expect(Buffer.from(docs[1]?.line_base64 ?? '', 'base64').equals(Buffer.from([0xff, 0xfe]))).toBe(true);
    expect(docs[1]?.source.offset).toBe(100);
  });

  it('an unwritable path is retryable, and the emitter recovers once the path becomes writable', async () => {
    const path = join(dir, 'later', 'out.log');
    const e = new FileEmitter({ path });
    await e.start();
    const r = await e.emit(batchOf([Buffer.from('wait for me')]), signal);
    expect(r.kind).toBe('retryable');
    if (r.kind === 'retryable') expect(r.error.message).toMatch(/ENOENT/);
    await mkdir(join(dir, 'later'));
    expect((await e.emit(batchOf([Buffer.from('wait for me')]), signal)).kind).toBe('ok');
    await e.close();
    expect(await readFile(path, 'utf8')).toBe('wait for me\n');
  });

  it('a path that is a directory is retryable, not fatal', async () => {
    const e = new FileEmitter({ path: dir });
    expect((await e.emit(batchOf([Buffer.from('x')]), signal)).kind).toBe('retryable');
    await e.close();
  });
});

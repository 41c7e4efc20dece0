import { appendFileSync, openSync, renameSync, truncateSync, writeFileSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { FINGERPRINT_BYTES, fingerprintOf } from '../../src/collector/file-identity.js';
import { LineFlag } from '../../src/wire/entry-batch.js';
import { TailFixture } from '../helpers/collector-tail-fixture.js';

let fx: TailFixture;
afterEach(() => fx.cleanup());

describe('FileTailer on real files', () => {
  it('reads appended lines by offset, with each entry carrying its file offset', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('a.log'), 'one\ntwo\n');
    const t = fx.tail('a.log');
    expect((await t.step(fx.builder, fx.buf)).status).toBe('data');
    appendFileSync(fx.path('a.log'), 'three\r\n');
    expect((await t.step(fx.builder, fx.buf)).status).toBe('data');
    expect((await t.step(fx.builder, fx.buf)).status).toBe('idle');
    const entries = fx.entries();
    expect(entries.map((e) => [e.line.toString(), e.offset])).toEqual([
      ['one', 0],
      ['two', 4],
      ['three', 8],
    ]);
    expect(t.cursor.readOffset).toBe(15);
  });

  it('holds a final line without newline until it completes, or until the file is idle', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('a.log'), 'done\npart');
    const t = fx.tail('a.log');
    await t.step(fx.builder, fx.buf);
    appendFileSync(fx.path('a.log'), 'ial\nlast');
    await t.step(fx.builder, fx.buf);
    expect(fx.lines()).toEqual(['done', 'partial']);
    fx.clock.advance(4999);
    await t.step(fx.builder, fx.buf);
    expect(fx.lines()).toEqual(['done', 'partial']);
    fx.clock.advance(1);
    await t.step(fx.builder, fx.buf);
    const entries = fx.entries();
    expect(entries.map((e) => e.line.toString())).toEqual(['done', 'partial', 'last']);
    expect(entries[2]?.flags).toBe(LineFlag.NoNewline);
    expect(t.cursor.readOffset).toBe(readFileSync(fx.path('a.log')).length);
  });

  it('flushes a pending multiline entry after the multiline timeout', async () => {
    fx = new TailFixture({ maxLineBytes: 1024, multilineStartPattern: /^\[/, multilineTimeoutMs: 1000, idleFlushMs: 5000, rotateWaitMs: 2000 });
    writeFileSync(fx.path('m.log'), '[1] Error\n  at x\n  at y\n[2] next\n  at z\n');
    const t = fx.tail('m.log');
    await t.step(fx.builder, fx.buf);
    expect(fx.lines()).toEqual(['[1] Error\n  at x\n  at y']);
    fx.clock.advance(1000);
    await t.step(fx.builder, fx.buf);
    const e = fx.entries();
    expect(e.map((x) => x.line.toString())).toEqual(['[1] Error\n  at x\n  at y', '[2] next\n  at z']);
    expect(e.map((x) => x.flags)).toEqual([LineFlag.Multiline, LineFlag.Multiline]);
  });

  it('detects copytruncate even when the file has regrown past the read offset', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('c.log'), 'aaaa\nbbbb\n');
    const t = fx.tail('c.log');
    await t.step(fx.builder, fx.buf);
    truncateSync(fx.path('c.log'), 0);
    appendFileSync(fx.path('c.log'), 'xxxxxxxxxxxxxxxxxxxxxxxxx\n');
    expect((await t.step(fx.builder, fx.buf)).status).toBe('truncated');
  });

  it('detects a truncation to zero', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('c.log'), 'aaaa\n');
    const t = fx.tail('c.log');
    await t.step(fx.builder, fx.buf);
    truncateSync(fx.path('c.log'), 0);
    expect((await t.step(fx.builder, fx.buf)).status).toBe('truncated');
  });

  it('after rename rotation, drains the old file to its end, then finishes it', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('r.log'), 'old1\n');
    const t = fx.tail('r.log');
    const writer = openSync(fx.path('r.log'), 'a');
    await t.step(fx.builder, fx.buf);
    renameSync(fx.path('r.log'), fx.path('r.log.1'));
    writeFileSync(fx.path('r.log'), 'new1\n');
    expect((await t.step(fx.builder, fx.buf)).status).toBe('idle');
    expect(t.state).toBe('draining');
    expect(t.detachKind).toBe('rename');
    // The writer still holds the old file open and writes a last line (and a partial one).
    writeSync(writer, 'old2\nold3');
    closeSync(writer);
    expect((await t.step(fx.builder, fx.buf)).status).toBe('data');
    fx.clock.advance(2000);
    expect((await t.step(fx.builder, fx.buf)).status).toBe('data');
    expect((await t.step(fx.builder, fx.buf)).status).toBe('finished');
    expect(fx.lines()).toEqual(['old1', 'old2', 'old3']);
  });

  it('upgrades a short fingerprint as the file grows, without reading the head again', async () => {
    fx = new TailFixture();
    writeFileSync(fx.path('s.log'), 'short\n');
    const t = fx.tail('s.log');
    expect(t.cursor.fingerprint.length).toBe(6);
    await t.step(fx.builder, fx.buf);
    appendFileSync(fx.path('s.log'), `${'y'.repeat(99)}\n`.repeat(20));
    await t.step(fx.builder, fx.buf);
    const content = readFileSync(fx.path('s.log'));
    expect(t.cursor.fingerprint).toEqual(fingerprintOf(content.subarray(0, FINGERPRINT_BYTES)));
  });

  it('seals full chunks mid-buffer; the checkpoint moves only over a contiguous acknowledged prefix', async () => {
    fx = new TailFixture(undefined, 1024);
    const line = `${'z'.repeat(99)}\n`;
    writeFileSync(fx.path('k.log'), line.repeat(40));
    const t = fx.tail('k.log');
    await t.step(fx.builder, fx.buf);
    fx.builder.seal();
    expect(fx.chunks.length).toBeGreaterThan(2);
    const ends = fx.chunks.map((c) => c.ranges[0]?.endOffset);
    expect(ends.at(-1)).toBe(4000);
    expect(ends.every((e) => e !== undefined && e % 100 === 0)).toBe(true);
    // Acknowledge all but the first: nothing moves. Then the first: everything moves.
    for (const c of fx.chunks.slice(1)) for (const r of c.ranges) r.cursor.ack(r);
    expect(t.cursor.ackedOffset).toBe(0);
    const first = fx.chunks[0]?.ranges[0];
    const delta = first?.cursor.ack(first);
    expect(t.cursor.ackedOffset).toBe(4000);
    expect(delta?.lines).toBe(40);
    expect(t.cursor.settled).toBe(true);
  });
  it('regression: a pending multiline entry followed by a partial line that together fill the read buffer does not stall the file', async () => {
    // 64 KiB read buffer, 40 000-byte limit: the held entry (39 001 bytes) and the unterminated
    // continuation after it (30 001 bytes) do not fit in one read, and cannot join (too long).
    fx = new TailFixture({ maxLineBytes: 40_000, multilineStartPattern: /^\S/, multilineTimeoutMs: 1000, idleFlushMs: 5000, rotateWaitMs: 2000 }, 1 << 20, 64 * 1024);
    const first = `E${'x'.repeat(39_000)}`;
    const cont = ` ${'y'.repeat(30_000)}`;
    writeFileSync(fx.path('m.log'), `${first}\n${cont}`);
    const t = fx.tail('m.log');
    await t.step(fx.builder, fx.buf);
    appendFileSync(fx.path('m.log'), '\nE2\n');
    for (let i = 0; i < 6; i++) {
      fx.clock.advance(1000);
      await t.step(fx.builder, fx.buf);
    }
    const lines = fx.lines();
    // Compared by shape first: a failure prints three short strings, not 70 KB.
    expect(lines.map((l) => `${l.slice(0, 2)}:${l.length}`)).toEqual(['Ex:39001', ' y:30001', 'E2:2']);
    expect(lines[0] === first && lines[1] === cont).toBe(true);
    expect(t.cursor.readOffset).toBe(readFileSync(fx.path('m.log')).length);
  });
});

import { describe, expect, it } from 'vitest';
import { IdleSchedule } from '../../src/collector/idle-schedule.js';

describe('IdleSchedule (when an idle file is looked at again)', () => {
  it('waits the short interval after the first idle look, doubles it per idle look, and stops at the longest', () => {
    const s = new IdleSchedule<object>(250, 2000);
    const f = {};
    expect(s.due(f, 0)).toBe(true);
    const waits: number[] = [];
    let now = 0;
    for (let i = 0; i < 6; i++) {
      s.idle(f, now);
      waits.push(s.waitMs(f));
      expect(s.due(f, now + s.waitMs(f) - 1)).toBe(false);
      now += s.waitMs(f);
      expect(s.due(f, now)).toBe(true);
    }
    expect(waits).toEqual([250, 500, 1000, 2000, 2000, 2000]);
  });

  it('data or an event puts a file back to at once, then to the short interval', () => {
    const s = new IdleSchedule<object>(250, 2000);
    const f = {};
    for (let i = 0; i < 5; i++) s.idle(f, 0);
    expect(s.due(f, 1999)).toBe(false);
    s.active(f);
    expect(s.due(f, 0)).toBe(true);
    s.idle(f, 10);
    expect(s.waitMs(f)).toBe(250);
    expect(s.due(f, 259)).toBe(false);
    expect(s.due(f, 260)).toBe(true);
  });

  it('looks by the deadline a file gives (a pending entry to send), however far the backoff has gone', () => {
    const s = new IdleSchedule<object>(250, 2000);
    const f = {};
    for (let i = 0; i < 5; i++) s.idle(f, 0);
    s.idle(f, 10_000, 10_300);
    expect(s.due(f, 10_299)).toBe(false);
    expect(s.due(f, 10_300)).toBe(true);
    // The backoff itself goes on; a deadline already past changes nothing.
    expect(s.waitMs(f)).toBe(2000);
    s.idle(f, 20_000, 19_000);
    expect(s.due(f, 21_999)).toBe(false);
    expect(s.due(f, 22_000)).toBe(true);
  });

  it('keeps each file on its own backoff', () => {
    const s = new IdleSchedule<object>(100, 800);
    const [a, b] = [{}, {}];
    for (let i = 0; i < 3; i++) s.idle(a, 0);
    s.idle(b, 0);
    expect([s.waitMs(a), s.waitMs(b)]).toEqual([400, 100]);
  });

  it('refuses bounds that make no schedule', () => {
    expect(() => new IdleSchedule(0, 10)).toThrow(RangeError);
    expect(() => new IdleSchedule(100, 50)).toThrow(RangeError);
  });
});

/**
 * Line accounting shared by every chaos scenario. Each line a scenario writes is unique and starts with its
 * key (`<scenario>-<file>-<seq>`), followed by a space and padding; the book remembers the exact bytes of
 * every line. Held against the lines found in the aggregator's output it yields the row's numbers:
 * written, delivered, lost, duplicated, changed (a line whose key was written but whose bytes differ, or a
 * line nobody wrote) and window-lost (copytruncate only: lines that were never delivered and exist in no
 * file any more, because logrotate truncated them away between its copy and its truncate).
 */
export interface Tally {
  readonly written: number;
  /** Lines in the output that belong to this book (duplicates included). */
  readonly delivered: number;
  readonly lost: number;
  /** Extra copies of lines delivered more than once. */
  readonly duplicated: number;
  readonly changed: number;
  readonly windowLost: number;
  /** Lines in the output with a key this book never wrote (counted in `changed` unless foreign lines are allowed). */
  readonly foreign: number;
  /** A few lost keys, for the report. */
  readonly lostSample: readonly string[];
}

export const ZERO_TALLY: Tally = {
  written: 0,
  delivered: 0,
  lost: 0,
  duplicated: 0,
  changed: 0,
  windowLost: 0,
  foreign: 0,
  lostSample: [],
};

export function addTallies(a: Tally, b: Tally): Tally {
  return {
    written: a.written + b.written,
    delivered: a.delivered + b.delivered,
    lost: a.lost + b.lost,
    duplicated: a.duplicated + b.duplicated,
    changed: a.changed + b.changed,
    windowLost: a.windowLost + b.windowLost,
    foreign: a.foreign + b.foreign,
    lostSample: [...a.lostSample, ...b.lostSample].slice(0, 5),
  };
}

/** The key of a line: its first word (a line may start with blanks, see `LineBook.next`). */
export function keyOf(line: string): string {
  const start = line.length - line.trimStart().length;
  const space = line.indexOf(' ', start);
  return space === -1 ? line.slice(start) : line.slice(start, space);
}

export interface TallyOptions {
  /**
   * Every line still present in some file at the end (live files and rotated copies). When given, an
   * undelivered line absent from all of them is window-lost instead of lost.
   */
  readonly onDisk?: ReadonlySet<string>;
  /** Hostile rows: lines of other writers are expected in the output; count them apart, not as changed. */
  readonly allowForeign?: boolean;
}

export class LineBook {
  private readonly expected = new Map<string, string>();
  private readonly seq = new Map<string, number>();

  constructor(readonly scenario: string) {}

  get size(): number {
    return this.expected.size;
  }

  /**
   * Makes the next unique line of `file` with `padding` bytes of padding after the key, and records it.
   * `lead` (blanks only) goes before the key, so that files can share their first bytes.
   */
  next(file: string, padding: number, fill = 'x', lead = ''): string {
    const n = this.seq.get(file) ?? 0;
    this.seq.set(file, n + 1);
    const key = `${this.scenario}-${file}-${String(n).padStart(8, '0')}`;
    const line = `${lead}${key} ${fill.repeat(padding)}`;
    this.expected.set(key, line);
    return line;
  }

  /** `count` lines of `file`, joined with newlines and ending in one. */
  block(file: string, count: number, padding: (i: number) => number, fill = 'x'): string {
    let text = '';
    for (let i = 0; i < count; i++) text += `${this.next(file, padding(i), fill)}\n`;
    return text;
  }

  owns(line: string): boolean {
    return keyOf(line).startsWith(`${this.scenario}-`);
  }

  /** Keys of written lines not (yet) in `delivered`. */
  missing(delivered: Iterable<string>): number {
    const seen = new Set<string>();
    for (const l of delivered) if (this.expected.get(keyOf(l)) === l) seen.add(keyOf(l));
    return this.expected.size - seen.size;
  }

  tally(delivered: Iterable<string>, options: TallyOptions = {}): Tally {
    const counts = new Map<string, number>();
    let total = 0;
    let changed = 0;
    let foreign = 0;
    for (const line of delivered) {
      const key = keyOf(line);
      const want = this.expected.get(key);
      if (want === undefined) {
        if (options.allowForeign === true && !this.owns(line)) foreign++;
        else changed++;
        continue;
      }
      total++;
      if (want !== line) {
        changed++;
        continue;
      }
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    let lost = 0;
    let windowLost = 0;
    let duplicated = 0;
    const lostSample: string[] = [];
    for (const [key, line] of this.expected) {
      const n = counts.get(key) ?? 0;
      if (n > 1) duplicated += n - 1;
      if (n > 0) continue;
      if (options.onDisk !== undefined && !options.onDisk.has(line)) {
        windowLost++;
        continue;
      }
      lost++;
      if (lostSample.length < 5) lostSample.push(key);
    }
    return { written: this.expected.size, delivered: total, lost, duplicated, changed, windowLost, foreign, lostSample };
  }
}

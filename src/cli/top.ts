import { parseHostPort } from '../config/address.js';
import { errorMessage } from '../errors.js';
import { parsePrometheusText, renderFrame } from './top-view.js';
import type { Scrape, TopLayout } from './top-view.js';

/**
 * `mega-aggregator top` / `mega-collector top`: a terminal view of the program's own /metrics,
 * redrawn every second (like `vector top`). Quits on q, Ctrl-C (raw mode: byte 0x03) or SIGINT/SIGTERM.
 */
export interface TopOptions {
  readonly program: string;
  readonly url: string;
  readonly layout: TopLayout;
  readonly intervalMs?: number;
  readonly input?: NodeJS.ReadStream;
  readonly output?: NodeJS.WriteStream;
}

/** The URL of a program's /metrics from its configured listen address ("[::]:9464" → 127.0.0.1). */
export function metricsUrl(address: string): string {
  const { host, port } = parseHostPort(address);
  const local = host === '::' || host === '0.0.0.0' || host === '' ? '127.0.0.1' : host;
  return `http://${local.includes(':') ? `[${local}]` : local}:${port}/metrics`;
}

async function scrape(url: string, timeoutMs: number): Promise<Scrape> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return parsePrometheusText(await res.text());
}

export function runTop(options: TopOptions): Promise<number> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const intervalMs = options.intervalMs ?? 1000;
  let previous: { scrape: Scrape; at: number } | undefined;
  let current: { scrape: Scrape; at: number } | undefined;
  let error: string | undefined;
  let busy = false;

  const draw = (): void => {
    const title = `${options.program} top  ${options.url}  ${new Date().toISOString().slice(11, 19)} UTC`;
    const lines = renderFrame({
      title,
      layout: options.layout,
      current: current?.scrape,
      previous: previous?.scrape,
      elapsedSeconds: current !== undefined && previous !== undefined ? (current.at - previous.at) / 1000 : 0,
      error,
    });
    output.write(`\x1b[H\x1b[2J${lines.join('\n')}\n`);
  };
  const tick = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const next = await scrape(options.url, Math.max(200, intervalMs - 100));
      previous = current;
      current = { scrape: next, at: performance.now() };
      error = undefined;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      error = cause ?? errorMessage(err);
    } finally {
      busy = false;
    }
    draw();
  };

  return new Promise<number>((resolve) => {
    const raw = input.isTTY === true;
    if (raw) input.setRawMode(true);
    output.write('\x1b[?25l');
    const timer = setInterval(() => void tick(), intervalMs);
    const onKey = (data: Buffer): void => {
      if (data.includes(0x03) || data.includes(0x71) || data.includes(0x51)) quit();
    };
    const quit = (): void => {
      clearInterval(timer);
      input.off('data', onKey);
      if (raw) input.setRawMode(false);
      input.pause();
      process.off('SIGINT', quit);
      process.off('SIGTERM', quit);
      output.write('\x1b[?25h\n');
      resolve(0);
    };
    input.on('data', onKey);
    input.resume();
    process.once('SIGINT', quit);
    process.once('SIGTERM', quit);
    draw();
    void tick();
  });
}

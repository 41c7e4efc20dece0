import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UdpPublication } from '../../src/aeron/udp-publication.js';
import { restartablePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'dist', 'cmd', 'aeron-receiver', 'main.js');

interface Cli {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly stderr: string[];
}

function startCli(args: string[]): Promise<Cli> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const cli: Cli = { child, lines: [], stderr: [] };
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
    const parts = out.split('\n');
    out = parts.pop() ?? '';
    cli.lines.push(...parts);
  });
  return new Promise((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      cli.stderr.push(d.toString('utf8'));
      if (/Subscribing to channel/.test(d.toString('utf8'))) resolve(cli);
    });
    child.once('exit', (code) => reject(new Error(`aeron-receiver exited ${code}: ${cli.stderr.join('')}`)));
  });
}


const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

describe('aeron-receiver CLI (real child process)', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--noEmitOnError', 'false'], { cwd: ROOT, stdio: 'ignore' });
  }, 120_000);

  it('prints each message like the C subscriber, and a publication rejoins it after SIGKILL and restart', async () => {
    const port = await restartablePort('udp');
    const channel = `aeron:udp?endpoint=127.0.0.1:${port}`;
    let cli = await startCli([channel, '10']);
    children.push(cli.child);
    const pub = await UdpPublication.open({ channel: `${channel}|term-length=64k`, streamId: 10, connectionTimeoutMs: 500 });
    expect(await pub.waitForConnected(5000)).toBe(true);
    for (const text of ['Hello World! 0', 'Hello World! 1']) expect(pub.offer(Buffer.from(text))).toBeGreaterThan(0);
    await waitFor(() => cli.lines.length === 2, { timeoutMs: 5000, intervalMs: 10, what: 'two lines' });
    expect(cli.lines).toEqual([
      `Message to stream 10 from session ${pub.sessionId} (14 bytes) <<Hello World! 0>>`,
      `Message to stream 10 from session ${pub.sessionId} (14 bytes) <<Hello World! 1>>`,
    ]);

    cli.child.kill('SIGKILL');
    await new Promise((r) => cli.child.once('exit', r));
    // Offered while nobody listens: retained, and sent again to the next image.
    expect(pub.offer(Buffer.from('while away'))).toBeGreaterThan(0);
    cli = await startCli([channel, '10']);
    children.push(cli.child);
    await waitFor(() => cli.lines.some((l) => l.endsWith('<<while away>>')), { timeoutMs: 10_000, intervalMs: 10, what: 'the retained message' });
    expect(pub.offer(Buffer.from('after restart'))).toBeGreaterThan(0);
    await waitFor(() => cli.lines.some((l) => l.endsWith('<<after restart>>')), { timeoutMs: 5000, intervalMs: 10, what: 'the new message' });
    expect(cli.lines.at(-2)).toMatch(/<<while away>>$/);
    expect(cli.stderr.join('')).toMatch(/Available image/);
    await pub.close();
    cli.child.kill('SIGTERM');
    expect(await new Promise((r) => cli.child.once('exit', r))).toBe(0);
  }, 60_000);

  it('refuses aeron:ipc with a reason and a non-zero exit', async () => {
    const child = spawn(process.execPath, [CLI, 'aeron:ipc', '10'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString('utf8')));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(2);
    expect(err).toMatch(/media driver/);
  });
});

#!/usr/bin/env node
import { AeronChannelError } from '../../src/aeron/channel-uri.js';
import { UdpReceiver } from '../../src/aeron/udp-receiver.js';

/**
 * aeron-receiver: prints what arrives on an Aeron UDP channel, like Aeron's C basic_subscriber, so a
 * user can check a deployment without a media driver:
 *   node dist/cmd/aeron-receiver/main.js aeron:udp?endpoint=127.0.0.1:40123 10
 * One line per message: Message to stream <id> from session <sid> (<n> bytes) <<payload>>
 * Image events and errors go to stderr.
 */
const USAGE = [
  'usage: aeron-receiver <channel aeron:udp?endpoint=host:port> [stream-id, default 1001] [--count N]',
  '  --count N  check instead of print: each payload must be what the C streaming_publisher sends (a',
  '             little-endian 64-bit counter from 0, zeros after); exits 0 after N intact messages in',
  '             order, printing one summary line, or 1 at the first message that is not the next one',
].join('\n');

/** Checks the C samples' streaming_publisher payloads in place (no per-message output). */
function sequenceChecker(expected: number, done: (code: number, summary: string) => void): (buf: Buffer, offset: number, length: number) => void {
  let next = 0n;
  let bytes = 0;
  let finished = false;
  return (buf, offset, length) => {
    if (finished) return;
    const counter = length >= 8 ? buf.readBigUInt64LE(offset) : -1n;
    let zeros = true;
    for (let i = offset + 8; i < offset + length && zeros; i++) zeros = buf[i] === 0;
    if (counter !== next || !zeros) {
      finished = true;
      done(1, `message ${next}: got ${length >= 8 ? `counter ${counter}` : `${length} bytes`}${zeros ? '' : ' with non-zero padding'}`);
      return;
    }
    next++;
    bytes += length;
    if (next === BigInt(expected)) {
      finished = true;
      done(0, `received ${next} messages (${bytes} bytes), intact and in order`);
    }
  };
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const countAt = argv.indexOf('--count');
  const countText = countAt < 0 ? undefined : argv[countAt + 1];
  const positional = countAt < 0 ? argv : [...argv.slice(0, countAt), ...argv.slice(countAt + 2)];
  const [channel, streamText = '1001'] = positional;
  if (channel === undefined || !/^-?\d+$/.test(streamText) || (countAt >= 0 && (countText === undefined || !/^[1-9]\d*$/.test(countText)))) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const streamId = Number(streamText) | 0;
  let pending: string[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    process.stdout.write(text);
  };
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  const check =
    countText === undefined
      ? undefined
      : sequenceChecker(Number(countText), (code, summary) => {
          (code === 0 ? process.stdout : process.stderr).write(`${summary}\n`);
          finish(code);
        });
  let receiver: UdpReceiver;
  try {
    receiver = await UdpReceiver.open({
      channel,
      streamId,
      onMessage: (buf, offset, length, image) => {
        if (check !== undefined) {
          check(buf, offset, length);
          return;
        }
        pending.push(`Message to stream ${streamId} from session ${image.sessionId} (${length} bytes) <<${buf.toString('utf8', offset, offset + length)}>>\n`);
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      },
      onImage: (event, image) => {
        process.stderr.write(`${event === 'available' ? 'Available' : 'Unavailable'} image on ${channel} streamId=${streamId} sessionId=${image.sessionId} joinPosition=${image.joinPosition}\n`);
      },
    });
  } catch (err) {
    process.stderr.write(`aeron-receiver: ${err instanceof AeronChannelError || err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  process.stderr.write(`Subscribing to channel ${channel} on Stream ID ${streamId} (port ${receiver.port})\n`);
  const code = await new Promise<number>((resolve) => {
    process.once('SIGINT', () => resolve(0));
    process.once('SIGTERM', () => resolve(0));
    void finished.then(resolve);
  });
  flush();
  await receiver.close();
  return code;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`aeron-receiver: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

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
const USAGE = 'usage: aeron-receiver <channel aeron:udp?endpoint=host:port> [stream-id, default 1001]';

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [channel, streamText = '1001'] = argv;
  if (channel === undefined || !/^-?\d+$/.test(streamText)) {
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
  let receiver: UdpReceiver;
  try {
    receiver = await UdpReceiver.open({
      channel,
      streamId,
      onMessage: (buf, offset, length, image) => {
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
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  flush();
  await receiver.close();
  return 0;
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

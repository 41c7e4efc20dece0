import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UdpReceiver } from '../../src/aeron/udp-receiver.js';
import { runAggregator, startAggregator } from '../helpers/aggregator-process.js';
import type { AggregatorProcess } from '../helpers/aggregator-process.js';
import { buildEntries, createIngestClient } from '../helpers/ingest-client.js';
import { tryWaitFor } from '../helpers/wait-for.js';

describe('aggregator: Aeron emitter selected by AGGREGATOR_AERON_CONFIGURATION (real process, real UDP)', () => {
  let dir: string;
  let receiver: UdpReceiver;
  let agg: AggregatorProcess;
  const messages: Buffer[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mc-agg-aeron-'));
    receiver = await UdpReceiver.open({
      channel: 'aeron:udp?endpoint=127.0.0.1:0',
      streamId: 10,
      onMessage: (buffer, offset, length) => messages.push(Buffer.from(buffer.subarray(offset, offset + length))),
    });
    agg = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool'),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '50ms',
        AGGREGATOR_AERON_CONFIGURATION: JSON.stringify({ channel: `aeron:udp?endpoint=127.0.0.1:${receiver.port}`, stream_id: 10, max_message_size: 1024 }),
      },
    });
  });

  afterAll(async () => {
    await agg?.kill();
    await receiver?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes each acked entry as one raw Aeron message, byte-exact, in order', async () => {
    const client = createIngestClient(agg.address);
    const stream = client.open();
    const lines = [Buffer.from('aeron one'), Buffer.from([0xff, 0x00, 0x41]), Buffer.from('aeron three')];
    const { entries, entryCount } = buildEntries(lines.map((data) => ({ data })));
    stream.send({ sequence: 1, entries, entryCount });
    expect((await stream.waitForAcks(1))[0]?.code).toBe('OK');
    await tryWaitFor(() => messages.length >= lines.length, { timeoutMs: 15_000, intervalMs: 25, what: 'every line at the receiver' });
    expect(messages.map((m) => m.toString('hex'))).toEqual(lines.map((l) => l.toString('hex')));
    expect(await agg.metric('mega_aggregator_aeron_messages_sent_total')).toBeGreaterThanOrEqual(3);
    await stream.finish();
    client.close();
  });

  it('an entry the emitter can never accept goes to the dead-letter file, counted; the rest of its batch is delivered', async () => {
    const client = createIngestClient(agg.address);
    const stream = client.open();
    const before = messages.length;
    const lines = [Buffer.from('fits'), Buffer.alloc(4096, 0x7a), Buffer.from('fits too')];
    const { entries, entryCount } = buildEntries(lines.map((data) => ({ data })));
    stream.send({ sequence: 1, entries, entryCount });
    expect((await stream.waitForAcks(1))[0]?.code).toBe('OK');
    await tryWaitFor(async () => (await agg.metric('mega_aggregator_entries_dead_lettered_total')) >= 1, { timeoutMs: 15_000, intervalMs: 25, what: 'a dead letter' });
    expect(await agg.metric('mega_aggregator_entries_dead_lettered_total')).toBe(1);
    await tryWaitFor(() => messages.length >= before + 2, { timeoutMs: 15_000, intervalMs: 25, what: 'the rest of the batch at the receiver' });
    expect(messages.slice(before).map((m) => m.toString())).toEqual(['fits', 'fits too']);
    await stream.finish();
    client.close();
    expect(await agg.stop()).toBe(0);
    const status = await runAggregator({ AGGREGATOR_SPOOL_DIR: join(dir, 'spool') }, ['spool', 'status']);
    expect(status.stdout).toMatch(/dead letters:\s+1/);
  });

  it('a channel host that does not resolve, or a parameter it cannot honour, stops start-up with exit 2 naming the variable', async () => {
    const spool = join(dir, 'spool-unresolvable');
    const unresolvable = await runAggregator({
      AGGREGATOR_SPOOL_DIR: spool,
      AGGREGATOR_AERON_CONFIGURATION: JSON.stringify({ channel: 'aeron:udp?endpoint=no-such-host.invalid:40123', stream_id: 10 }),
    });
    expect(unresolvable.code).toBe(2);
    expect(unresolvable.stderr).toMatch(/AGGREGATOR_AERON_CONFIGURATION: channel aeron:udp\?endpoint=no-such-host.invalid:40123 cannot be opened/);
    // One line for the operator (besides the JSON log records of start-up), no stack trace.
    expect(unresolvable.stderr.trim().split('\n').filter((l) => !l.startsWith('{'))).toHaveLength(1);
    expect(unresolvable.stderr).not.toMatch(/\n\s+at /);
    const refused = await runAggregator({
      AGGREGATOR_SPOOL_DIR: spool,
      AGGREGATOR_AERON_CONFIGURATION: JSON.stringify({ channel: 'aeron:udp?endpoint=10.0.0.5:40123|reliable=false', stream_id: 10 }),
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/AGGREGATOR_AERON_CONFIGURATION.*reliable=false is refused/);
  });

  it('publishes on a channel written with localhost and the parameters it honours', async () => {
    const got: string[] = [];
    const local = await UdpReceiver.open({
      channel: 'aeron:udp?endpoint=127.0.0.1:0',
      streamId: 11,
      onMessage: (buffer, offset, length) => got.push(buffer.toString('utf8', offset, offset + length)),
    });
    const agg2 = await startAggregator({
      env: {
        AGGREGATOR_SPOOL_DIR: join(dir, 'spool-localhost'),
        AGGREGATOR_MINIMUM_PUBLISH_FREQUENCY: '20ms',
        AGGREGATOR_AERON_CONFIGURATION: JSON.stringify({
          channel: `aeron:udp?endpoint=localhost:${local.port}|init-term-id=12345|linger=1s|interface=127.0.0.1|so-sndbuf=256k|sparse=true`,
          stream_id: 11,
        }),
      },
    });
    try {
      const client = createIngestClient(agg2.address);
      const stream = client.open();
      const { entries, entryCount } = buildEntries(['via localhost', 'second'].map((l) => ({ data: Buffer.from(l) })));
      stream.send({ sequence: 1, entries, entryCount });
      expect((await stream.waitForAcks(1))[0]?.code).toBe('OK');
      await tryWaitFor(() => got.length >= 2, { timeoutMs: 15_000, intervalMs: 25, what: 'both lines at the receiver' });
      expect(got).toEqual(['via localhost', 'second']);
      await stream.finish();
      client.close();
      expect(await agg2.stop()).toBe(0);
    } finally {
      await agg2.kill();
      await local.close();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { parseUdpChannel } from '../../src/aeron/channel-uri.js';
import { aeronOutputSchema } from '../../src/config/aeron-config.js';
import { json } from '../../src/config/options.js';
import { entryFilter, routeEntries } from '../../src/emitters/aeron-router.js';
import type { Entry } from '../../src/wire/entry-batch.js';

const entry = (path: string, tags: Record<string, string>): Entry => ({
  line: Buffer.from('x'),
  offset: 0,
  timeUnixNano: 0n,
  flags: 0,
  source: { collectorId: 'c', path, fileId: 'f' },
  tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
});

describe('Aeron tag routing (several publications)', () => {
  const web = entry('/var/log/nginx/access.log', { host: 'web-1', env: 'prod' });
  const db = entry('/var/log/postgres/pg.log', { host: 'db-1' });
  const bare = entry('/tmp/x.log', {});

  it('tagpass: any listed key matching one of its globs; tagdrop: none may match; path is the file path', () => {
    expect(entryFilter({})).toBeUndefined();
    const webOnly = entryFilter({ tagpass: { host: ['web-*'] } })!;
    expect([web, db, bare].map(webOnly)).toEqual([true, false, false]);
    const logs = entryFilter({ tagpass: { path: ['/var/log/**'], env: ['prod'] } })!;
    expect([web, db, bare].map(logs)).toEqual([true, true, false]);
    const notDb = entryFilter({ tagdrop: { host: ['db-*', 'cache-?'] } })!;
    expect([web, db, bare].map(notDb)).toEqual([true, false, true]);
    const both = entryFilter({ tagpass: { path: ['/var/log/*/*.log'] }, tagdrop: { host: ['web-*'] } })!;
    expect([web, db, bare].map(both)).toEqual([false, true, false]);
  });

  it('an entry goes to every publication that passes it; those nobody takes are counted', () => {
    const filters = [entryFilter({ tagpass: { host: ['web-*'] } }), undefined, entryFilter({ tagpass: { path: ['/nowhere/**'] } })];
    expect(routeEntries([web, db, bare], filters)).toEqual({ taken: [[0], [0, 1, 2], []], unrouted: 0 });
    expect(routeEntries([web, db, bare], [filters[0], filters[2]])).toEqual({ taken: [[0], []], unrouted: 2 });
  });

  it('AGGREGATOR_AERON_CONFIGURATION: one object or a list; every problem named with its publication', () => {
    const schema = json(aeronOutputSchema);
    const parse = (text: string) => schema.parse(text);
    const one = parse('{"channel": "aeron:udp?endpoint=10.0.0.1:1", "stream_id": 1}');
    expect(one.publications.map((p) => p.channel)).toEqual([parseUdpChannel('aeron:udp?endpoint=10.0.0.1:1')]);
    const two = parse(
      JSON.stringify([
        { channel: 'aeron:udp?endpoint=10.0.0.1:1', stream_id: 1, tagpass: { host: ['web-*'] } },
        { channel: 'aeron:udp?endpoint=10.0.0.1:1', stream_id: 2, data_format: 'json', tagdrop: { path: ['/tmp/**'] } },
      ]),
    );
    expect(two.publications.map((p) => [p.streamId, p.dataFormat, p.tagpass, p.tagdrop])).toEqual([
      [1, 'raw', { host: ['web-*'] }, undefined],
      [2, 'json', undefined, { path: ['/tmp/**'] }],
    ]);
    expect(() => parse('[]')).toThrow(/at least one publication/);
    // The refused parameter is named, in a list as in a single object (a plain union would say "Invalid input").
    expect(() => parse(JSON.stringify([{ channel: 'aeron:udp?endpoint=10.0.0.1:1', stream_id: 1 }, { channel: 'aeron:udp?endpoint=10.0.0.1:1|reliable=false', stream_id: 2 }]))).toThrow(
      /reliable=false is refused/,
    );
    expect(() => parse(JSON.stringify({ channel: 'aeron:udp?endpoint=10.0.0.1:1|reliable=false', stream_id: 2 }))).toThrow(/reliable=false is refused/);
    expect(() => parse(JSON.stringify([{ channel: 'aeron:udp?endpoint=10.0.0.1:1', stream_id: 1 }, { channel: 'aeron:udp?endpoint=10.0.0.1:1', stream_id: 1 }]))).toThrow(
      /publication 1 repeats channel aeron:udp\?endpoint=10.0.0.1:1 with stream_id 1/,
    );
    expect(() => parse(JSON.stringify([{ channel: 'aeron:udp?endpoint=10.0.0.1:1', stream_id: 1, tagpass: { host: [] } }]))).toThrow();
    expect(() => parse(JSON.stringify([{ channel: 'aeron:udp?endpoint=10.0.0.1:1', stream_id: 1, tagpas: { host: ['x'] } }]))).toThrow(/tagpas/);
  });
});

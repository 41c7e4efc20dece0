import { describe, expect, it } from 'vitest';
import { parseUdpChannel } from '../../src/aeron/channel-uri.js';
import { aeronConfigSchema, parseAeronConfiguration } from '../../src/config/aeron-config.js';
import { json } from '../../src/config/options.js';
import { ConfigError } from '../../src/errors.js';

describe('Aeron channel URI', () => {
  it('parses endpoint, mtu, term-length and session-id', () => {
    expect(parseUdpChannel('aeron:udp?endpoint=10.0.0.5:40123|mtu=8k|term-length=1m|session-id=77')).toEqual({
      host: '10.0.0.5',
      port: 40123,
      mtu: 8192,
      termLength: 1024 * 1024,
      sessionId: 77,
      text: 'aeron:udp?endpoint=10.0.0.5:40123|mtu=8k|term-length=1m|session-id=77',
    });
    expect(parseUdpChannel('aeron:udp?endpoint=[::1]:9000')).toMatchObject({ host: '::1', port: 9000 });
  });

  it('refuses ipc, other media, bad params and localhost with reasons', () => {
    expect(() => parseUdpChannel('aeron:ipc')).toThrow(/shared memory/);
    expect(() => parseUdpChannel('aeron:tcp?endpoint=1.2.3.4:5')).toThrow(/not supported/);
    expect(() => parseUdpChannel('aeron:udp?mtu=1408')).toThrow(/endpoint/);
    expect(() => parseUdpChannel('aeron:udp?endpoint=1.2.3.4:5|mtu=1400')).toThrow(/multiple of 32/);
    expect(() => parseUdpChannel('aeron:udp?endpoint=1.2.3.4:5|term-length=100000')).toThrow(/power of two/);
    expect(() => parseUdpChannel('aeron:udp?endpoint=1.2.3.4:0')).toThrow(/port/);
  });
});

describe('AGGREGATOR_AERON_CONFIGURATION', () => {
  it('confirm: receiver by default, sent on request, anything else refused naming the field', () => {
    const base = { channel: 'aeron:udp?endpoint=10.0.0.5:40123', stream_id: 10 };
    expect(parseAeronConfiguration(JSON.stringify({ ...base, confirm: 'sent' })).confirm).toBe('sent');
    expect(parseAeronConfiguration(JSON.stringify({ ...base, confirm: 'receiver' })).confirm).toBe('receiver');
    expect(() => parseAeronConfiguration(JSON.stringify({ ...base, confirm: 'offered' }))).toThrow(/AGGREGATOR_AERON_CONFIGURATION: confirm: /);
  });

  it('applies the defaults', () => {
    const c = parseAeronConfiguration('{"channel":"aeron:udp?endpoint=10.0.0.5:40123","stream_id":10}');
    expect(c).toMatchObject({
      streamId: 10,
      publicationTimeoutMs: 10_000,
      maxMessageSize: 2 * 1024 * 1024,
      dataFormat: 'raw',
      retryBackoffMultiplier: 2,
      confirm: 'receiver',
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads Go durations and caps max_message_size at the term maximum', () => {
    const c = parseAeronConfiguration(
      JSON.stringify({ channel: 'aeron:udp?endpoint=10.0.0.5:1|term-length=64k', stream_id: 1, publication_timeout: '1.5s', retry_delay: '5ms', max_retry_delay: '2s', data_format: 'json_batch', max_message_size: '4KiB' }),
    );
    expect(c).toMatchObject({ publicationTimeoutMs: 1500, retryDelayMs: 5, maxRetryDelayMs: 2000, dataFormat: 'json_batch', maxMessageSize: 4096 });
    expect(() => parseAeronConfiguration(JSON.stringify({ channel: 'aeron:udp?endpoint=10.0.0.5:1|term-length=64k', stream_id: 1, max_message_size: 9000 }))).toThrow(/8192/);
  });

  it('names the variable and every problem, and refuses aeron:ipc', () => {
    try {
      parseAeronConfiguration(JSON.stringify({ channel: 'aeron:ipc', stream_id: 'x', data_format: 'xml' }));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/AGGREGATOR_AERON_CONFIGURATION/);
      expect(msg).toMatch(/stream_id/);
      expect(msg).toMatch(/data_format/);
    }
    expect(() => parseAeronConfiguration('{"channel":"aeron:ipc","stream_id":1}')).toThrow(/media driver/);
    expect(() => parseAeronConfiguration('{"channel":"aeron:udp?endpoint=1.2.3.4:5","stream_id":1,"bogus":1}')).toThrow(/bogus/);
    expect(() => parseAeronConfiguration('not json')).toThrow(/JSON/);
  });

  it('works with json() from the option tables', () => {
    const schema = json(aeronConfigSchema);
    expect(schema.parse('{"channel":"aeron:udp?endpoint=1.2.3.4:5","stream_id":3}').streamId).toBe(3);
    expect(schema.safeParse('{"channel":"aeron:ipc","stream_id":3}').success).toBe(false);
  });

  describe('channel parameters: honoured, or refused with one line naming the parameter', () => {
    it('accepts localhost and DNS names (resolved when the publication opens), as Aeron\'s samples write them', () => {
      expect(parseUdpChannel('aeron:udp?endpoint=localhost:40123')).toMatchObject({ host: 'localhost', port: 40123 });
      expect(parseUdpChannel('aeron:udp?endpoint=subscriber.example:40123')).toMatchObject({ host: 'subscriber.example' });
    });

    it('honours init-term-id, linger, interface, so-sndbuf and so-rcvbuf', () => {
      expect(parseUdpChannel('aeron:udp?endpoint=10.0.0.5:1|init-term-id=-7|linger=250ms|interface=127.0.0.1:4000|so-sndbuf=1m|so-rcvbuf=64k')).toMatchObject({
        initialTermId: -7,
        lingerMs: 250,
        localHost: '127.0.0.1',
        localPort: 4000,
        socketSendBuffer: 1024 * 1024,
        socketReceiveBuffer: 65536,
      });
      expect(parseUdpChannel('aeron:udp?endpoint=10.0.0.5:1|linger=2000000000').lingerMs).toBe(2000);
      expect(parseUdpChannel('aeron:udp?endpoint=10.0.0.5:1|interface=10.1.2.3')).toMatchObject({ localHost: '10.1.2.3' });
    });

    it('accepts what changes nothing without a driver (sparse, alias, tags) and the defaults reliable=true, eos=true', () => {
      expect(() => parseUdpChannel('aeron:udp?endpoint=10.0.0.5:1|sparse=true|alias=logs|tags=1,2|reliable=true|eos=true')).not.toThrow();
      expect(() => parseUdpChannel('aeron:udp?endpoint=10.0.0.5:1|sparse=maybe')).toThrow(/sparse="maybe" must be true or false/);
    });

    it.each([
      ['ttl=4', /ttl= is refused: it applies to multicast endpoints only/],
      ['control=10.0.0.1:4000', /control= needs control-mode=dynamic .* or control-mode=manual/],
      ['control-mode=dynamic', /endpoint= is refused with control-mode=dynamic/],
      ['control-mode=manual', /endpoint= is refused with control-mode=manual: list the receivers in "destinations"/],
      ['term-id=5', /term-id= is refused/],
      ['term-offset=64', /term-offset= is refused/],
      ['reliable=false', /reliable=false is refused/],
      ['eos=false', /eos=false is refused/],
      ['fc=min', /fc= is refused/],
      ['linger=soon', /linger="soon" is not a duration/],
      ['interface=10.0.0.0/24', /subnet notation/],
      ['init-term-id=x', /init-term-id=x is not a 32-bit integer/],
      ['wibble=1', /wibble= is not supported/],
    ])('refuses %s', (param, message) => {
      expect(() => parseUdpChannel(`aeron:udp?endpoint=10.0.0.5:1|${param}`)).toThrow(message);
    });

    it('multicast: the control group is the data group plus one, interface= and ttl= are honoured', () => {
      expect(parseUdpChannel('aeron:udp?endpoint=224.0.1.1:40456|interface=127.0.0.1|ttl=8')).toMatchObject({
        host: '224.0.1.1',
        port: 40456,
        localHost: '127.0.0.1',
        multicast: { controlGroup: '224.0.1.2', ttl: 8 },
      });
      expect(() => parseUdpChannel('aeron:udp?endpoint=224.0.1.2:40456')).toThrow(/last byte must be odd/);
      expect(() => parseUdpChannel('aeron:udp?endpoint=224.0.1.1:40456|ttl=300')).toThrow(/ttl=300 must be an integer from 0 to 255/);
      expect(() => parseUdpChannel('aeron:udp?endpoint=[ff02::1]:40456')).toThrow(/IPv6 multicast is not supported yet/);
    });

    it('multi-destination-cast: dynamic binds control=, manual takes its destinations from the configuration', () => {
      expect(parseUdpChannel('aeron:udp?control=10.0.0.1:4000|control-mode=dynamic')).toMatchObject({
        host: '10.0.0.1',
        port: 4000,
        localHost: '10.0.0.1',
        localPort: 4000,
        mdc: { mode: 'dynamic', destinations: [] },
      });
      expect(parseUdpChannel('aeron:udp?control-mode=manual|term-length=1m')).toMatchObject({ mdc: { mode: 'manual' }, termLength: 1024 * 1024 });
      expect(parseUdpChannel('aeron:udp?control-mode=manual|control=10.0.0.1:4000')).toMatchObject({ localPort: 4000 });
      expect(() => parseUdpChannel('aeron:udp?control-mode=dynamic')).toThrow(/control-mode=dynamic needs control=host:port/);
      expect(() => parseUdpChannel('aeron:udp?control-mode=sometimes|control=10.0.0.1:4000')).toThrow(/control-mode=sometimes must be manual or dynamic/);
      expect(() => parseUdpChannel('aeron:udp?control-mode=dynamic|control=10.0.0.1:4000|interface=10.0.0.1')).toThrow(/interface= is refused with control-mode=dynamic/);
      expect(() => parseUdpChannel('aeron:udp?control-mode=dynamic|control=224.0.1.1:4000')).toThrow(/must be a unicast address/);

      const manual = parseAeronConfiguration(
        JSON.stringify({ channel: 'aeron:udp?control-mode=manual', stream_id: 1, destinations: ['aeron:udp?endpoint=10.0.0.1:4001', 'collector-b.example:4002'] }),
      );
      expect(manual.channel.mdc).toEqual({ mode: 'manual', destinations: [{ host: '10.0.0.1', port: 4001 }, { host: 'collector-b.example', port: 4002 }] });
      const refused = (config: object): string => {
        try {
          parseAeronConfiguration(JSON.stringify({ stream_id: 1, ...config }));
        } catch (err) {
          return (err as ConfigError).message;
        }
        return 'accepted';
      };
      expect(refused({ channel: 'aeron:udp?control-mode=manual' })).toMatch(/AGGREGATOR_AERON_CONFIGURATION: destinations: control-mode=manual needs "destinations"/);
      expect(refused({ channel: 'aeron:udp?endpoint=10.0.0.1:1', destinations: ['10.0.0.1:2'] })).toMatch(/destinations: destinations are for multi-destination-cast: add control-mode=manual/);
      expect(refused({ channel: 'aeron:udp?control-mode=manual', destinations: ['aeron:udp?endpoint=10.0.0.1:2|mtu=8k'] })).toMatch(/destinations\.0: destination .* with no other parameter/);
      expect(refused({ channel: 'aeron:udp?control-mode=manual', destinations: ['10.0.0.1'] })).toMatch(/destinations\.0: endpoint "10.0.0.1" must be host:port/);
      expect(refused({ channel: 'aeron:udp?control-mode=manual', destinations: [] })).toMatch(/destinations/);
    });
  });
});

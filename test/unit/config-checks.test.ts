import { describe, expect, it } from 'vitest';
import { classifyHandshakeError } from '../../src/aggregator/grpc-listener.js';
import { aggregatorConfigWarnings, aggregatorOptions, loadAggregatorConfig } from '../../src/config/aggregator-config.js';
import { collectorConfigWarnings, loadCollectorConfig } from '../../src/config/collector-config.js';
import { closestName, editDistance, unknownVariableProblems } from '../../src/config/unknown-variables.js';
import { RateLimitedLog } from '../../src/telemetry/rate-limited-log.js';
import { ManualClock } from '../../src/util/manual-clock.js';

const COLLECTOR_BASE = { COLLECTOR_REMOTE_ADDRESS: '127.0.0.1:8000', COLLECTOR_FILES: '/var/log/*.log' };

describe('unknown variables', () => {
  it('edit distance', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });

  it('a truncated name finds the option it abbreviates', () => {
    const known = Object.values(aggregatorOptions).map((s) => s.env);
    expect(closestName('AGGREGATOR_FILE_CONFIG', known)).toBe('AGGREGATOR_FILE_CONFIGURATION');
    expect(closestName('AGGREGATOR_SPOOLDIR', known)).toBe('AGGREGATOR_SPOOL_DIR');
    expect(closestName('AGGREGATOR_TLS_CA_CERT', known)).toBe('AGGREGATOR_TLS_CA_CERTIFICATE');
  });

  it('the aggregator refuses an unknown AGGREGATOR_ variable, naming the closest known one', () => {
    expect(() => loadAggregatorConfig({ AGGREGATOR_FILE_CONFIG: '{"path":"/x.log"}' })).toThrow(
      /AGGREGATOR_FILE_CONFIG: unknown variable; did you mean AGGREGATOR_FILE_CONFIGURATION\?/,
    );
  });

  it('a typo is reported together with the other problems', () => {
    expect(() => loadAggregatorConfig({ AGGREGATOR_MAX_BATCH: '5', AGGREGATOR_TLS: 'maybe' })).toThrow(
      /AGGREGATOR_MAX_BATCH: unknown variable; did you mean AGGREGATOR_MAX_BATCH_SIZE\?.*AGGREGATOR_TLS:/,
    );
  });

  it('the collector refuses an unknown COLLECTOR_ variable and ignores the other program\'s', () => {
    expect(() => loadCollectorConfig({ ...COLLECTOR_BASE, COLLECTOR_STATEDIR: '/x' })).toThrow(/COLLECTOR_STATEDIR: unknown variable; did you mean COLLECTOR_STATE_DIR\?/);
    expect(() => loadCollectorConfig({ ...COLLECTOR_BASE, AGGREGATOR_WHATEVER: '1', LOG_LEVEL: 'debug' })).not.toThrow();
    expect(() => loadAggregatorConfig({ COLLECTOR_WHATEVER: '1' })).not.toThrow();
  });

  it('variables Kubernetes injects for a Service named like the program are not ours', () => {
    const env = {
      AGGREGATOR_SERVICE_HOST: '10.0.0.1',
      AGGREGATOR_SERVICE_PORT: '8000',
      AGGREGATOR_SERVICE_PORT_GRPC: '8000',
      AGGREGATOR_PORT: 'tcp://10.0.0.1:8000',
      AGGREGATOR_PORT_8000_TCP: 'tcp://10.0.0.1:8000',
      AGGREGATOR_PORT_8000_TCP_PROTO: 'tcp',
      AGGREGATOR_PORT_8000_TCP_PORT: '8000',
      AGGREGATOR_PORT_8000_TCP_ADDR: '10.0.0.1',
      AGGREGATOR_METRICS_SERVICE_HOST: '10.0.0.2',
      AGGREGATOR_METRICS_PORT: 'tcp://10.0.0.2:9464',
      AGGREGATOR_METRICS_PORT_9464_TCP_PORT: '9464',
    };
    expect(unknownVariableProblems(env, 'AGGREGATOR_', aggregatorOptions)).toEqual([]);
    expect(() => loadAggregatorConfig(env)).not.toThrow();
    // A bare _PORT is a service link only with a tcp:// value; otherwise it is likely a typo.
    expect(unknownVariableProblems({ AGGREGATOR_LISTEN_PORT: '9000' }, 'AGGREGATOR_', aggregatorOptions)).toHaveLength(1);
  });
});

describe('TLS material while TLS is off', () => {
  it('is a warning naming the variables, not an error', () => {
    const env = { AGGREGATOR_TLS_CERTIFICATE: '/run/secrets/cert.pem', AGGREGATOR_TLS_KEY: '/run/secrets/key.pem' };
    const warnings = aggregatorConfigWarnings(env, loadAggregatorConfig(env));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^AGGREGATOR_TLS_CERTIFICATE, AGGREGATOR_TLS_KEY: set while AGGREGATOR_TLS is off/);
    expect(aggregatorConfigWarnings({}, loadAggregatorConfig({}))).toEqual([]);
    const cenv = { ...COLLECTOR_BASE, COLLECTOR_TLS_CA_CERTIFICATE: '/run/secrets/ca.pem' };
    expect(collectorConfigWarnings(cenv, loadCollectorConfig(cenv))[0]).toMatch(/^COLLECTOR_TLS_CA_CERTIFICATE: set while COLLECTOR_TLS is off/);
  });
});

describe('COLLECTOR_REMOTE_ADDRESS', () => {
  it('refuses an IPv6 zone id, which grpc-js cannot parse as a target', () => {
    expect(() => loadCollectorConfig({ ...COLLECTOR_BASE, COLLECTOR_REMOTE_ADDRESS: '[fe80::1%eth0]:8000' })).toThrow(/COLLECTOR_REMOTE_ADDRESS: .*zone id/);
    expect(loadCollectorConfig({ ...COLLECTOR_BASE, COLLECTOR_REMOTE_ADDRESS: '[fd00::1]:8000' }).remoteAddress).toEqual(['[fd00::1]:8000']);
  });

  it('takes a comma-separated list of addresses and names (blanks and repeats dropped); a bad item is named', () => {
    const env = { ...COLLECTOR_BASE, COLLECTOR_REMOTE_ADDRESS: ' agg-1:8000, 10.0.0.2:8000,,[fd00::3]:8000 ,agg-1:8000' };
    expect(loadCollectorConfig(env).remoteAddress).toEqual(['agg-1:8000', '10.0.0.2:8000', '[fd00::3]:8000']);
    expect(() => loadCollectorConfig({ ...COLLECTOR_BASE, COLLECTOR_REMOTE_ADDRESS: 'agg-1:8000,agg-2' })).toThrow(/COLLECTOR_REMOTE_ADDRESS: .*agg-2/);
    expect(() => loadCollectorConfig({ ...COLLECTOR_BASE, COLLECTOR_REMOTE_ADDRESS: ' , ' })).toThrow(/COLLECTOR_REMOTE_ADDRESS: no address given/);
  });

  it('COLLECTOR_DNS_SERVERS takes IP addresses with optional ports; a name is refused', () => {
    expect(loadCollectorConfig({ ...COLLECTOR_BASE, COLLECTOR_DNS_SERVERS: '10.96.0.10, 127.0.0.1:5353,[::1]:53' }).dnsServers).toEqual(['10.96.0.10', '127.0.0.1:5353', '[::1]:53']);
    expect(() => loadCollectorConfig({ ...COLLECTOR_BASE, COLLECTOR_DNS_SERVERS: 'kube-dns:53' })).toThrow(/COLLECTOR_DNS_SERVERS: "kube-dns:53" is not an IP address/);
    expect(loadCollectorConfig(COLLECTOR_BASE).resolveIntervalMs).toBe(30_000);
  });
});

describe('TLS handshake failure reasons', () => {
  it.each([
    [{ code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' }, 'no_client_certificate'],
    [{ code: 'ERR_SSL_CERTIFICATE_VERIFY_FAILED' }, 'bad_client_certificate'],
    [{ code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' }, 'bad_client_certificate'],
    [{ code: 'ERR_SSL_WRONG_VERSION_NUMBER' }, 'not_tls'],
    [{ code: 'ERR_SSL_HTTP_REQUEST' }, 'not_tls'],
    [{ code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }, 'timeout'],
    [{ code: 'ECONNRESET', message: 'socket hang up' }, 'aborted'],
    [{ code: 'ERR_SSL_UNEXPECTED_MESSAGE' }, 'protocol'],
  ] as const)('%o → %s', (err, reason) => {
    expect(classifyHandshakeError(err)).toBe(reason);
  });
});

describe('RateLimitedLog', () => {
  it('lets a burst through per window, then says how many it held back', () => {
    const clock = new ManualClock();
    const written: Array<{ n: number; suppressed?: number }> = [];
    const log = new RateLimitedLog<{ n: number }>({ clock, intervalMs: 10_000, burst: 2, write: (r) => written.push(r) });
    for (let n = 0; n < 5; n++) log.log({ n });
    expect(written).toEqual([{ n: 0 }, { n: 1 }]);
    clock.advance(10_000);
    log.log({ n: 5 });
    log.log({ n: 6 });
    log.log({ n: 7 });
    expect(written).toEqual([{ n: 0 }, { n: 1 }, { n: 5, suppressed: 3 }, { n: 6 }]);
  });
});

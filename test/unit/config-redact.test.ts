import { describe, expect, it } from 'vitest';
import { effectiveSettings, redact } from '../../src/cli/effective-config.js';
import { collectorOptions } from '../../src/config/collector-config.js';
import { checkCertificateDates } from '../../src/cli/validate-tls.js';
import { FIXTURE_CERT } from '../helpers/pem-fixtures.js';

describe('validate: effective configuration', () => {
  it('redacts private keys given as PEM text and credential fields of JSON settings', () => {
    expect(redact('-----BEGIN EC PRIVATE KEY-----\\nabc\\n-----END EC PRIVATE KEY-----')).toBe('<redacted: PEM private key>');
    expect(redact('{"integration_key":"s3cret","incident_key":"k"}')).toBe('{"integration_key":"<redacted>","incident_key":"k"}');
    expect(redact('/run/secrets/server.key')).toBe('/run/secrets/server.key');
    expect(redact('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----')).toContain('CERTIFICATE');
  });

  it('says where each value comes from: flag, env, default or unset', () => {
    const settings = effectiveSettings(
      collectorOptions,
      { COLLECTOR_REMOTE_ADDRESS: 'a:1', COLLECTOR_FILES: '/x/*.log', COLLECTOR_ID: '' },
      new Map([['--remote-address', 'b:2']]),
    );
    const byEnv = new Map(settings.map((s) => [s.env, s]));
    expect(byEnv.get('COLLECTOR_REMOTE_ADDRESS')).toEqual({ env: 'COLLECTOR_REMOTE_ADDRESS', value: 'b:2', source: 'flag' });
    expect(byEnv.get('COLLECTOR_FILES')?.source).toBe('env');
    expect(byEnv.get('COLLECTOR_BUFFER_TIMEOUT')).toEqual({ env: 'COLLECTOR_BUFFER_TIMEOUT', value: '1s', source: 'default' });
    expect(byEnv.get('COLLECTOR_ID')?.source).toBe('unset');
  });

  it('fails a certificate outside its validity period and warns two weeks before it expires', () => {
    const cert = Buffer.from(FIXTURE_CERT);
    expect(checkCertificateDates('X', cert, new Date('2000-01-01T00:00:00Z'))[0]).toMatchObject({ ok: false, message: expect.stringMatching(/not valid before/) });
    expect(checkCertificateDates('X', cert, new Date('2200-01-01T00:00:00Z'))[0]).toMatchObject({ ok: false, message: expect.stringMatching(/expired on/) });
    expect(checkCertificateDates('X', cert, new Date('2126-11-01T00:00:00Z'))[0]).toMatchObject({ ok: true, warn: true });
    expect(checkCertificateDates('X', cert, new Date('2030-01-01T00:00:00Z'))[0]).toMatchObject({ ok: true, message: expect.stringMatching(/valid until 2126-/) });
  });
});

import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestCerts } from '../helpers/certs.js';

/**
 * Client certificates signed by the test CA (test/helpers/certs.ts) whose validity lies in the past or in
 * the future, made with `openssl ca` (the only OpenSSL 3.0 command that sets both dates).
 */
const run = promisify(execFile);

export interface DatedCert {
  readonly cert: Buffer;
  readonly key: Buffer;
}

async function caConfig(certs: TestCerts): Promise<string> {
  const dir = join(certs.dir, 'ca-db');
  await mkdir(join(dir, 'new'), { recursive: true });
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '1000\n');
  const conf = join(dir, 'ca.cnf');
  await writeFile(
    conf,
    [
      '[ ca ]',
      'default_ca = test_ca',
      '[ test_ca ]',
      `database = ${join(dir, 'index.txt')}`,
      `new_certs_dir = ${join(dir, 'new')}`,
      `serial = ${join(dir, 'serial')}`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      '[ any ]',
      'commonName = supplied',
      '[ client_ext ]',
      'extendedKeyUsage = clientAuth',
      'keyUsage = critical,digitalSignature,keyEncipherment',
      '',
    ].join('\n'),
  );
  return conf;
}

/** A client certificate valid from `start` to `end` (openssl's YYYYMMDDHHMMSSZ). */
export async function datedClientCert(certs: TestCerts, name: string, start: string, end: string): Promise<DatedCert> {
  const conf = await caConfig(certs);
  const key = join(certs.dir, `${name}.key`);
  const csr = join(certs.dir, `${name}.csr`);
  const crt = join(certs.dir, `${name}.crt`);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  await run('openssl', [
    'ca', '-batch', '-config', conf, '-cert', certs.ca.certPath, '-keyfile', certs.ca.keyPath, '-in', csr, '-out', crt,
    '-startdate', start, '-enddate', end, '-extensions', 'client_ext', '-notext',
  ]);
  return { cert: await readFile(crt), key: await readFile(key) };
}

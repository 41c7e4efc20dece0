import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Paths (and contents) of one key pair with its certificate. */
export interface CertFiles {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TestCerts {
  readonly dir: string;
  /** The CA that signs the server and the good client certificate. */
  readonly ca: CertFiles;
  /** Server certificate for 127.0.0.1, ::1 and localhost. */
  readonly server: CertFiles;
  /** Client certificate signed by `ca`. */
  readonly client: CertFiles;
  /** An unrelated CA and a client certificate it signed (must be refused). */
  readonly otherCa: CertFiles;
  readonly otherClient: CertFiles;
  cleanup(): Promise<void>;
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

async function files(dir: string, name: string): Promise<CertFiles> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  return { certPath, keyPath, cert: await readFile(certPath), key: await readFile(keyPath) };
}

async function makeCa(dir: string, name: string, subject: string): Promise<CertFiles> {
  await openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', subject,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return files(dir, name);
}

async function makeLeaf(dir: string, name: string, ca: string, subject: string, ext: string): Promise<CertFiles> {
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(dir, [
    'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject,
  ]);
  await openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`,
  ]);
  return files(dir, name);
}

/**
 * Generates test PKI with the openssl CLI in a temp dir: a CA, a server certificate (SAN 127.0.0.1,
 * ::1, localhost), a client certificate from the same CA, and a second, unrelated CA with its own
 * client certificate. Takes well under a second (EC keys).
 */
export async function generateTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'mc-certs-'));
  const ca = await makeCa(dir, 'ca', '/CN=mega-collector test CA');
  const server = await makeLeaf(
    dir,
    'server',
    'ca',
    '/CN=localhost',
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
  );
  const client = await makeLeaf(
    dir,
    'client',
    'ca',
    '/CN=test-collector',
    'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
  );
  const otherCa = await makeCa(dir, 'other-ca', '/CN=unrelated CA');
  const otherClient = await makeLeaf(
    dir,
    'other-client',
    'other-ca',
    '/CN=intruder',
    'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
  );
  return {
    dir,
    ca,
    server,
    client,
    otherCa,
    otherClient,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

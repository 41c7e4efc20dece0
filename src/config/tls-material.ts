import { X509Certificate, createPrivateKey } from 'node:crypto';

/**
 * A server or client whose private key does not belong to its certificate passes every file check,
 * starts, and then fails every handshake (the aggregator even answered /healthz 200). We parse the
 * material once at start-up and compare the certificate's public key with the key.
 */

function reason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.message ?? e.code ?? String(err);
}

/** Pushes a problem naming `env` when `pem` holds no parsable certificate. */
export function checkCertificate(env: string, pem: Buffer, problems: string[]): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    problems.push(`${env}: not a valid X.509 certificate (${reason(err)})`);
    return undefined;
  }
}

/**
 * Checks that `cert` and `key` parse and belong together; every problem names its variable (a
 * mismatch names both).
 */
export function checkKeyPair(
  names: { readonly certificate: string; readonly key: string },
  material: { readonly certificate: Buffer; readonly key: Buffer },
  problems: string[],
): void {
  const certificate = checkCertificate(names.certificate, material.certificate, problems);
  let key;
  try {
    key = createPrivateKey(material.key);
  } catch (err) {
    problems.push(`${names.key}: not a usable private key (${reason(err)})`);
    return;
  }
  if (certificate !== undefined && !certificate.checkPrivateKey(key)) {
    problems.push(`${names.key}: the private key does not match the certificate in ${names.certificate} (every TLS handshake would fail)`);
  }
}

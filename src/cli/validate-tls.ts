import { X509Certificate } from 'node:crypto';
import { fail, pass, warn } from './validate-checks.js';
import type { CheckResult } from './validate-checks.js';

const SOON_MS = 14 * 24 * 3600 * 1000;

/** A certificate outside its validity period fails every handshake; one that expires soon is a warning. */
export function checkCertificateDates(env: string, pem: Buffer, now: Date): CheckResult[] {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return [fail(env, 'not a valid certificate')];
  }
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  const subject = cert.subject.replace(/\n/g, ', ');
  if (now < from) return [fail(env, `"${subject}" is not valid before ${from.toISOString()}`)];
  if (now > to) return [fail(env, `"${subject}" expired on ${to.toISOString()}`)];
  if (to.getTime() - now.getTime() < SOON_MS) return [warn(env, `"${subject}" expires soon, on ${to.toISOString()}`)];
  return [pass(env, `"${subject}" valid until ${to.toISOString()}`)];
}

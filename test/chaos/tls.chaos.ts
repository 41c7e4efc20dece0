import { describe, it } from 'vitest';
import { runAggregator } from '../helpers/aggregator-process.js';
import { generateTestCerts } from '../helpers/certs.js';
import type { TestCerts } from '../helpers/certs.js';
import { buildEntries, createIngestClient } from '../helpers/ingest-client.js';
import type { ClientTls } from '../helpers/ingest-client.js';
import { ZERO_TALLY } from './accounting.js';
import { datedClientCert } from './bad-certs.js';
import type { Random } from './random.js';
import { sleep } from './rig.js';
import { chaosRow } from './row.js';
import type { RunOutcome } from './row.js';
import { CHAOS_SECONDS } from './settings.js';
import { writeDuring } from './scenario.js';

/**
 * TLS negatives against an mTLS aggregator while a legitimate collector ships over mTLS: clients with an
 * expired certificate, a not yet valid one, one from another CA, a certificate with the wrong key, no
 * certificate, and plaintext. Each is refused, nothing it sent is acknowledged or reaches the output (its
 * lines would count as changed), and every line of the legitimate collector arrives. A second row starts
 * an aggregator whose key does not match its certificate: it must refuse to start (exit 2).
 */
interface Intruder {
  readonly name: string;
  readonly tls: ClientTls | undefined;
}

async function intruders(certs: TestCerts): Promise<Intruder[]> {
  const expired = await datedClientCert(certs, 'expired', '20200101000000Z', '20200102000000Z');
  const future = await datedClientCert(certs, 'not-yet-valid', '20400101000000Z', '20400102000000Z');
  return [
    { name: 'expired', tls: { ca: certs.ca.cert, cert: expired.cert, key: expired.key } },
    { name: 'not yet valid', tls: { ca: certs.ca.cert, cert: future.cert, key: future.key } },
    { name: 'other CA', tls: { ca: certs.ca.cert, cert: certs.otherClient.cert, key: certs.otherClient.key } },
    { name: 'wrong key', tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.otherClient.key } },
    { name: 'no certificate', tls: { ca: certs.ca.cert } },
    { name: 'plaintext', tls: undefined },
  ];
}

/** Tries to ship one chunk; returns whether it was acknowledged OK. */
async function tryShip(address: string, who: Intruder, seq: number): Promise<boolean> {
  let client;
  try {
    client = createIngestClient(address, who.tls);
  } catch {
    return false; // refused before connecting (e.g. a key that does not match the certificate)
  }
  try {
    const stream = client.open();
    const { entries, entryCount } = buildEntries([{ data: Buffer.from(`intruder-${who.name.replace(/ /g, '')}-${seq} must never arrive`) }], { collectorId: 'intruder' });
    stream.send({ sequence: seq, entries, entryCount });
    try {
      const [ack] = await stream.waitForAcks(1, 5_000);
      return ack?.code === 'OK';
    } catch {
      return false;
    } finally {
      stream.cancel();
    }
  } finally {
    client.close();
  }
}

async function negatives(random: Random, scenario: string): Promise<RunOutcome> {
  const certs = await generateTestCerts();
  try {
    const bad = await intruders(certs);
    return await writeDuring({
      scenario,
      random,
      linesPerSecond: 2000,
      aggregatorEnv: {
        AGGREGATOR_TLS: '1',
        AGGREGATOR_TLS_CERTIFICATE: certs.server.certPath,
        AGGREGATOR_TLS_KEY: certs.server.keyPath,
        AGGREGATOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
      },
      collectorEnv: {
        COLLECTOR_TLS: '1',
        COLLECTOR_TLS_CERTIFICATE: certs.client.certPath,
        COLLECTOR_TLS_KEY: certs.client.keyPath,
        COLLECTOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
      },
      during: async ({ rig }) => {
        const problems: string[] = [];
        const until = Date.now() + CHAOS_SECONDS * 1000;
        let attempts = 0;
        while (Date.now() < until || attempts < bad.length) {
          const who = bad[attempts % bad.length] as Intruder;
          if (await tryShip(rig.address, who, ++attempts)) problems.push(`${who.name}: acknowledged OK`);
          await sleep(random.ms(20, 200));
        }
        return { problems: [...new Set(problems)], note: `${attempts} intruder attempts (${bad.map((b) => b.name).join(', ')})` };
      },
    });
  } finally {
    await certs.cleanup();
  }
}

async function keyMismatch(): Promise<RunOutcome> {
  const certs = await generateTestCerts();
  try {
    const result = await runAggregator(
      {
        AGGREGATOR_LISTEN_ADDRESS: '127.0.0.1:0',
        AGGREGATOR_SPOOL_DIR: `${certs.dir}/spool`,
        AGGREGATOR_TLS: '1',
        AGGREGATOR_TLS_CERTIFICATE: certs.server.certPath,
        AGGREGATOR_TLS_KEY: certs.otherClient.keyPath,
        AGGREGATOR_TLS_CA_CERTIFICATE: certs.ca.certPath,
      },
      [],
      8_000,
    ).catch((err: unknown) => ({ code: 'still running', stdout: '', stderr: (err as Error).message }));
    const said = result.stderr.trim().split('\n').at(-1)?.slice(0, 120) ?? '';
    const problems = result.code === 2 ? [] : [`key/certificate mismatch: exit ${result.code}, expected 2 (${said})`];
    return { tally: ZERO_TALLY, problems, note: result.code === 2 ? 'refused to start, exit 2' : '' };
  } finally {
    await certs.cleanup();
  }
}

describe('chaos: TLS negatives', () => {
  it('TLS negatives (expired, not yet valid, other CA, wrong key, no certificate, plaintext)', ({ task }) =>
    chaosRow(task, (r) => negatives(r, task.name)));
  it('TLS: aggregator key does not match its certificate', ({ task }) => chaosRow(task, () => keyMismatch(), { noLines: true }));
});

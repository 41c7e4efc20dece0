import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { glob } from 'tinyglobby';
import { shipCredentials } from '../collector/aggregator-channel.js';
import type { CollectorConfig } from '../config/collector-config.js';
import { collectorConfigWarnings, collectorOptions } from '../config/collector-config.js';
import { effectiveSettings, formatSettings } from './effective-config.js';
import { checkCertificateDates } from './validate-tls.js';
import { checkBindable, checkDirectory, fail, formatReport, fromWarning, pass, warn } from './validate-checks.js';
import type { CheckResult, ValidateReport } from './validate-checks.js';

/**
 * `mega-collector validate`: the configuration (already loaded and valid when this runs), the state
 * directory, the metrics address (bound and released), the files the globs match now, the TLS
 * certificates' dates and, unless `--no-network`, the aggregator's gRPC health check over the
 * configured TLS (the same credentials the collector ships with).
 */
export interface ValidateCollectorOptions {
  readonly network: boolean;
  readonly healthTimeoutMs?: number;
  readonly now?: Date;
}

async function checkFiles(config: CollectorConfig): Promise<CheckResult> {
  const env = collectorOptions.files.env;
  const paths = await glob(config.files as string[], { absolute: true, onlyFiles: true, dot: true });
  if (paths.length === 0) return warn(env, 'no file matches now (files that appear later are picked up)');
  const unreadable: string[] = [];
  for (const path of paths) await access(path, constants.R_OK).catch(() => unreadable.push(path));
  if (unreadable.length > 0) return fail(env, `${unreadable.length} of ${paths.length} matching files cannot be read, e.g. ${unreadable[0]}`);
  return pass(env, `${paths.length} matching file${paths.length === 1 ? '' : 's'}, all readable`);
}

function credentials(config: CollectorConfig): grpc.ChannelCredentials {
  return shipCredentials(config.tls ? { caCertificate: config.tlsCaCertificate, key: config.tlsKey, certificate: config.tlsCertificate } : undefined);
}

/** grpc.health.v1.Health/Check of the whole server ("") at one remote address (each is checked). */
async function checkAggregator(config: CollectorConfig, address: string, timeoutMs: number): Promise<CheckResult> {
  const env = collectorOptions.remoteAddress.env;
  // Imported here: grpc-health-check parses its .proto at import, and the running collector's bundle
  // (support/bundle-programs.ts) keeps it outside, where a static import would load it at every start.
  const { service: healthService } = await import('grpc-health-check');
  const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
  const client = new Health(address, credentials(config));
  const how = config.tls ? 'TLS' : 'plaintext';
  try {
    const status = await new Promise<string>((resolve, reject) => {
      const check = (client as unknown as Record<string, (...args: unknown[]) => void>).check as (...args: unknown[]) => void;
      check.call(client, { service: '' }, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res?: { status?: string | number }) => {
        if (err !== null) reject(err);
        else resolve(String(res?.status ?? 'UNKNOWN'));
      });
    });
    if (status === 'SERVING' || status === '1') return pass(env, `the aggregator at ${address} answers its health check over ${how}: SERVING`);
    return fail(env, `the aggregator at ${address} answers ${status}`);
  } catch (err) {
    const e = err as grpc.ServiceError;
    return fail(env, `no health answer from ${address} over ${how} (${e.code === undefined ? '' : `${grpc.status[e.code]}: `}${e.details ?? e.message})`);
  } finally {
    client.close();
  }
}

export async function validateCollector(
  config: CollectorConfig,
  env: NodeJS.ProcessEnv,
  flags: ReadonlyMap<string, string>,
  options: ValidateCollectorOptions,
): Promise<ValidateReport> {
  const o = collectorOptions;
  const now = options.now ?? new Date();
  const results: CheckResult[] = [
    ...collectorConfigWarnings(env, config).map(fromWarning),
    await checkDirectory(o.stateDir.env, config.stateDir),
    await checkBindable(o.metricsAddress.env, config.metricsAddress),
    await checkFiles(config),
  ];
  if (config.tlsCertificate !== undefined) {
    results.push(pass(o.tlsKey.env, `matches the certificate in ${o.tlsCertificate.env}`));
    results.push(...checkCertificateDates(o.tlsCertificate.env, config.tlsCertificate, now));
  }
  if (config.tlsCaCertificate !== undefined) results.push(...checkCertificateDates(o.tlsCaCertificate.env, config.tlsCaCertificate, now));
  if (options.network) for (const address of config.remoteAddress) results.push(await checkAggregator(config, address, options.healthTimeoutMs ?? 5000));
  else results.push(warn(o.remoteAddress.env, `${config.remoteAddress.join(',')} not contacted (--no-network)`));
  return formatReport('mega-collector', results, formatSettings(effectiveSettings(collectorOptions, env, flags)));
}

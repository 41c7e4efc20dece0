import type { AggregatorConfig } from '../config/aggregator-config.js';
import { aggregatorConfigWarnings, aggregatorOptions } from '../config/aggregator-config.js';
import { effectiveSettings, formatSettings } from './effective-config.js';
import { checkCertificateDates } from './validate-tls.js';
import { checkBindable, checkDirectory, checkWritableFile, formatReport, fromWarning, pass, warn } from './validate-checks.js';
import type { CheckResult, ValidateReport } from './validate-checks.js';

/**
 * `mega-aggregator validate`: the configuration (already loaded and valid when this runs), then
 * what start-up would meet: the spool directory, both listen addresses (bound and released), the
 * emitter's file, the TLS certificates' dates. Never starts the pipeline.
 */
export async function validateAggregator(
  config: AggregatorConfig,
  env: NodeJS.ProcessEnv,
  flags: ReadonlyMap<string, string>,
  now: Date = new Date(),
): Promise<ValidateReport> {
  const o = aggregatorOptions;
  const results: CheckResult[] = [
    ...aggregatorConfigWarnings(env, config).map(fromWarning),
    await checkDirectory(o.spoolDir.env, config.spoolDir),
    await checkBindable(o.listenAddress.env, config.listenAddress),
    await checkBindable(o.metricsAddress.env, config.metricsAddress),
  ];
  switch (config.emitter.kind) {
    case 'blackhole':
      results.push(warn('emitter', 'none configured: batches go to the blackhole (acknowledged entries are discarded)'));
      break;
    case 'file':
      results.push(await checkWritableFile(o.fileConfiguration.env, config.emitter.config.path));
      break;
    case 'text':
      results.push(pass(o.textConfiguration.env, 'batches are written to stdout'));
      break;
    case 'aeron':
      results.push(pass(o.aeronConfiguration.env, `publishes to ${config.emitter.config.publications.map((p) => `${p.channel.text} stream ${p.streamId}`).join(', ')}`));
      break;
  }
  if (config.tls !== null) {
    results.push(pass(o.tlsKey.env, `matches the certificate in ${o.tlsCertificate.env}`));
    results.push(...checkCertificateDates(o.tlsCertificate.env, config.tls.certificate, now));
    results.push(...checkCertificateDates(o.tlsCaCertificate.env, config.tls.caCertificate, now));
  } else {
    results.push(pass(o.tls.env, 'off: the gRPC port serves plaintext'));
  }
  return formatReport('mega-aggregator', results, formatSettings(effectiveSettings(aggregatorOptions, env, flags)));
}

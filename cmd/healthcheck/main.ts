#!/usr/bin/env node
// Container HEALTHCHECK: GET /healthz of the program configured in this environment. The collector is
// recognised by COLLECTOR_FILES; its metrics address is COLLECTOR_METRICS_ADDRESS (default [::]:9465),
// the aggregator's AGGREGATOR_METRICS_ADDRESS (default [::]:9464). HEALTHCHECK_PORT overrides both.
import { get } from 'node:http';
import { parseHostPort } from '../../src/config/address.js';

function port(): number {
  const override = process.env.HEALTHCHECK_PORT;
  if (override !== undefined && override !== '') return Number(override);
  const isCollector = (process.env.COLLECTOR_FILES ?? '') !== '';
  const address = isCollector
    ? (process.env.COLLECTOR_METRICS_ADDRESS ?? '[::]:9465')
    : (process.env.AGGREGATOR_METRICS_ADDRESS ?? '[::]:9464');
  return parseHostPort(address).port;
}

get({ host: '127.0.0.1', port: port(), path: '/healthz', timeout: 2000 }, (res) => {
  process.exit(res.statusCode === 200 ? 0 : 1);
})
  .on('timeout', () => process.exit(1))
  .on('error', () => process.exit(1));

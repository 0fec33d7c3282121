import { Logger } from '@aws-lambda-powertools/logger';
import type { ConfigSource } from '../../src/config/source.js';
import { createJobContext } from '../../src/jobs/context.js';
import { createMetrics } from '../../src/metrics/create.js';
import { checkFreshness, emitFreshness, type FreshnessReport } from '../../src/status/freshness.js';
import { powertoolsLog } from '../shared/log.js';
import { applyDatabaseSecret, applyPrometheusSecret, configSourceFromEnv } from '../shared/runtime.js';

/**
 * Every 15 minutes: the freshness report, with the age gauges and re-pushed last-success
 * timestamps the stale alarms read (CloudWatch cannot look back 8 or 35 days itself).
 * The same report is returned to callers (`opsctl status --remote`).
 */
export async function status(deps: { source: ConfigSource; logger: Logger }): Promise<FreshnessReport> {
  const config = await deps.source.current();
  await applyDatabaseSecret(config);
  await applyPrometheusSecret(config);
  const log = powertoolsLog(deps.logger);
  const ctx = createJobContext(config, log, { metrics: await createMetrics(config, log) });
  try {
    const report = await checkFreshness(ctx);
    emitFreshness(ctx, report);
    return report;
  } finally {
    await ctx.metrics.flush();
  }
}

const logger = new Logger({ serviceName: 'ops-status' });
const source = configSourceFromEnv(logger);

export const handler = async () => status({ source, logger });

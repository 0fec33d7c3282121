import { Logger } from '@aws-lambda-powertools/logger';
import type { ConfigSource } from '../../src/config/source.js';
import { createJobContext } from '../../src/jobs/context.js';
import { createMetrics } from '../../src/metrics/create.js';
import { awsTargetFromEnv, defaultAwsClients, type AwsClients } from '../../src/status/aws-status.js';
import { checkFreshness, emitFreshness, type FreshnessReport } from '../../src/status/freshness.js';
import { renderStatusHtml } from '../../src/status/html.js';
import { buildStatusReport, type StatusReport } from '../../src/status/report.js';
import { powertoolsLog } from '../shared/log.js';
import { applyTargetSecrets, applyPrometheusSecret, configSourceFromEnv } from '../shared/runtime.js';
import { runbookBase } from '../../src/status/runbooks.js';

/** A CloudWatch dashboard custom widget calls with `widgetContext`: it gets the HTML page. */
function isWidgetCall(event: unknown): boolean {
  return typeof event === 'object' && event !== null && 'widgetContext' in event;
}

/**
 * The 15-minute schedule sends `{ "scope": "freshness" }`: only the gauges the stale alarms
 * read, so a slow Redis or a throttled AWS API can never delay the checker that keeps
 * those alarms honest.
 */
function isFreshnessRun(event: unknown): boolean {
  return typeof event === 'object' && event !== null && (event as { scope?: unknown }).scope === 'freshness';
}

/**
 * Every 15 minutes: the freshness gauges and re-pushed last-success timestamps the stale
 * alarms read (CloudWatch cannot look back 8 or 35 days itself). Every call returns the
 * whole status report (JSON; `opsctl status --remote`), or the HTML page to a dashboard
 * custom widget, so the console's sign-in protects it.
 */
export async function status(event: unknown, deps: { source: ConfigSource; logger: Logger; env?: NodeJS.ProcessEnv; aws?: AwsClients }): Promise<StatusReport | FreshnessReport | string> {
  const env = deps.env ?? process.env;
  const config = await deps.source.current();
  await applyTargetSecrets(config, env);
  await applyPrometheusSecret(config, env);
  const log = powertoolsLog(deps.logger);
  const ctx = createJobContext(config, log, { metrics: await createMetrics(config, log, env), env });
  const target = awsTargetFromEnv(env);
  try {
    if (isFreshnessRun(event)) {
      const freshness = await checkFreshness(ctx);
      emitFreshness(ctx, freshness);
      return freshness;
    }
    const { report, freshness } = await buildStatusReport(ctx, {
      aws: target ? { clients: deps.aws ?? (await defaultAwsClients()), target } : undefined,
      links: { dashboard: env.OPS_DASHBOARD_URL, runbooks: runbookBase(ctx.config.alerts.runbookBaseUrl, env) },
    });
    emitFreshness(ctx, freshness);
    deps.logger.info('status', { state: report.state, reasons: report.reasons });
    return isWidgetCall(event) ? renderStatusHtml(report, { fragment: true }) : report;
  } finally {
    await ctx.metrics.flush();
  }
}

const logger = new Logger({ serviceName: 'ops-status' });
const source = configSourceFromEnv(logger);
// Created once per container, reused by warm invocations.
let aws: AwsClients | undefined;

export const handler = async (event: unknown) => {
  if (awsTargetFromEnv(process.env)) aws ??= await defaultAwsClients();
  return status(event, { source, logger, aws });
};

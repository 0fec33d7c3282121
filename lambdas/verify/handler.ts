import { Logger } from '@aws-lambda-powertools/logger';
import { OpsError } from '../../src/errors.js';
import { createJobContext } from '../../src/jobs/context.js';
import { createMetrics } from '../../src/metrics/create.js';
import type { VerifyJobResult } from '../../src/jobs/runner.js';
import { verifyKnowledgeJob, verifyPostgresJob, verifyRedisJob } from '../../src/jobs/verify-jobs.js';
import type { ConfigSource } from '../../src/config/source.js';
import { applyPrometheusSecret, configSourceFromEnv } from '../shared/runtime.js';
import { powertoolsLog } from '../shared/log.js';
import { parseVerifyEvent } from './event.js';

export class VerificationFailedError extends OpsError {
  constructor(results: VerifyJobResult[]) {
    const failed = results.filter((r) => !r.ok);
    super('VERIFY_FAILED', `verification failed: ${failed.map((r) => `${r.component}/${r.name}${r.backupId ? `/${r.backupId}` : ''}: ${r.error ?? r.verification?.failure}`).join('; ')}`, {
      context: { failed },
    });
    this.name = 'VerificationFailedError';
  }
}

/** Parse the event, run the same verification as `opsctl verify`, fail the invocation when any level failed. */
export async function verify(event: unknown, deps: { source: ConfigSource; logger: Logger }): Promise<{ results: VerifyJobResult[] } | { ignored: string }> {
  const request = parseVerifyEvent(event);
  if ('ignored' in request) {
    deps.logger.info('event ignored', { reason: request.ignored });
    return request;
  }
  const config = await deps.source.current();
  await applyPrometheusSecret(config);
  const log = powertoolsLog(deps.logger);
  const ctx = createJobContext(config, log, { metrics: await createMetrics(config, log) });
  let results: VerifyJobResult[];
  try {
    results =
      request.component === 'postgres'
        ? await verifyPostgresJob(ctx, request.name, request.backupId)
        : request.component === 'redis'
          ? await verifyRedisJob(ctx, request.name, request.backupId)
          : await verifyKnowledgeJob(ctx, request.name, request.backupId);
  } finally {
    await ctx.metrics.flush();
  }
  if (results.some((r) => !r.ok)) throw new VerificationFailedError(results);
  return { results };
}

const logger = new Logger({ serviceName: 'ops-verify' });
const source = configSourceFromEnv(logger);

export const handler = async (event: unknown) => verify(event, { source, logger });

import { Logger } from '@aws-lambda-powertools/logger';
import * as z from 'zod';
import type { ConfigSource } from '../../src/config/source.js';
import { OpsError } from '../../src/errors.js';
import { createJobContext } from '../../src/jobs/context.js';
import { createMetrics } from '../../src/metrics/create.js';
import { ensurePartitionsJob, type PartitionJobResult } from '../../src/jobs/partition-jobs.js';
import { powertoolsLog } from '../shared/log.js';
import { applyTargetSecrets, applyPrometheusSecret, configSourceFromEnv } from '../shared/runtime.js';
import { parseOrThrow } from '../shared/validate.js';

const eventSchema = z
  .object({
    dryRun: z.boolean().optional(),
    tables: z.array(z.string().min(1)).optional(),
    name: z.string().optional(),
  })
  .strict();

export class PartitionRunFailedError extends OpsError {
  constructor(results: PartitionJobResult[]) {
    const detail = results
      .flatMap((r) => ('error' in r ? [`${r.database}: ${r.error}`] : r.tables.flatMap((t) => t.problems.map((p) => `${r.database}/${t.table}: ${p}`))))
      .join('; ');
    super('PARTITIONS_FAILED', `partition maintenance failed: ${detail}`, { context: { results } });
    this.name = 'PartitionRunFailedError';
  }
}

/** `{ dryRun?, tables? }` -> the same run as `opsctl partitions ensure`; throws (failed invocation, alarm) when any table failed. */
export async function runPartitions(event: unknown, deps: { source: ConfigSource; logger: Logger }): Promise<{ results: PartitionJobResult[] }> {
  const request = parseOrThrow(eventSchema, event ?? {}, 'partitions request');
  const config = await deps.source.current();
  await applyTargetSecrets(config, process.env, undefined, { postgres: true });
  await applyPrometheusSecret(config);
  const log = powertoolsLog(deps.logger);
  const ctx = createJobContext(config, log, { metrics: await createMetrics(config, log) });
  let results: PartitionJobResult[];
  try {
    results = await ensurePartitionsJob(ctx, { dryRun: request.dryRun ?? false, tables: request.tables, name: request.name });
  } finally {
    await ctx.metrics.flush();
  }
  if (results.some((r) => r.status === 'failed' || r.status === 'problems')) throw new PartitionRunFailedError(results);
  return { results };
}

const logger = new Logger({ serviceName: 'ops-partitions' });
const source = configSourceFromEnv(logger);

export const handler = async (event: unknown) => runPartitions(event, { source, logger });

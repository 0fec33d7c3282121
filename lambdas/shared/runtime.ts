import path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { ConfigSource, fileConfigSource } from '../../src/config/source.js';
import { powertoolsLog } from './log.js';
import type { OpsConfig } from '../../src/config/load.js';
import { prometheusSecretEnv } from '../../src/metrics/create.js';

/** Seconds a function trusts its cached configuration before asking SSM again. */
export const CONFIG_MAX_AGE_SECONDS = 60;

/**
 * Where a function's configuration comes from: the SSM parameter the stack created
 * (OPS_CONFIG_PARAMETER), re-read within a minute of a change without a redeploy, or a
 * file (OPS_CONFIG, else ops.config.json beside the bundle) for local runs.
 */
export function configSourceFromEnv(logger: Logger, env: NodeJS.ProcessEnv = process.env, ssm?: SSMProvider): ConfigSource {
  const parameter = env.OPS_CONFIG_PARAMETER;
  if (parameter) {
    const provider = ssm ?? new SSMProvider();
    return new ConfigSource(
      async () => {
        const value = await provider.get(parameter, { maxAge: CONFIG_MAX_AGE_SECONDS });
        if (typeof value !== 'string') throw new Error(`SSM parameter ${parameter} is empty`);
        return value;
      },
      `ssm:${parameter}`,
      powertoolsLog(logger),
      env,
    );
  }
  return fileConfigSource(env.OPS_CONFIG ?? path.resolve('ops.config.json'), powertoolsLog(logger), env);
}

/**
 * libpq and node-postgres read PGPASSWORD; in AWS it comes from the database's secret
 * (RDS format: JSON with a `password` field), never from configuration.
 */
export async function applyDatabaseSecret(config: OpsConfig, env: NodeJS.ProcessEnv = process.env, secrets?: SecretsProvider): Promise<void> {
  const arn = config.postgres.find((d) => d.passwordSecretArn)?.passwordSecretArn ?? env.OPS_DB_SECRET_ARN;
  if (!arn || env.PGPASSWORD) return;
  const provider = secrets ?? new SecretsProvider();
  const value = await provider.get(arn, { maxAge: 300, transform: 'json' });
  const password = (value as { password?: unknown } | undefined)?.password;
  if (typeof password !== 'string') throw new Error(`secret ${arn} has no "password" field`);
  env.PGPASSWORD = password;
}

/**
 * The Prometheus password or token (basic / bearer auth) from the secret the stack names
 * (OPS_PROMETHEUS_SECRET_ARN, a plain-text secret), into the variable the ops config's
 * auth reads, so the metrics code is the same in a Lambda, a task and a shell.
 */
export async function applyPrometheusSecret(config: OpsConfig, env: NodeJS.ProcessEnv = process.env, secrets?: SecretsProvider): Promise<void> {
  const arn = env.OPS_PROMETHEUS_SECRET_ARN;
  const target = prometheusSecretEnv(config.metrics.prometheus.auth);
  if (!arn || !target || env[target]) return;
  const value = await (secrets ?? new SecretsProvider()).get(arn, { maxAge: 300 });
  if (typeof value !== 'string' || value === '') throw new Error(`secret ${arn} is empty`);
  env[target] = value;
}

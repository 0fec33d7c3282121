import path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { ConfigSource, fileConfigSource } from '../../src/config/source.js';
import { powertoolsLog } from './log.js';
import type { OpsConfig } from '../../src/config/load.js';
import { prometheusSecretEnv } from '../../src/metrics/create.js';
import { pgPasswordEnv, redisPasswordEnv } from '../../src/config/secret-env.js';

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
 * Each database's and Redis instance's password from its own secret (RDS format: JSON
 * with a `password` field) into its own variable, never into configuration: with two
 * databases, each is reached with its own password.
 */
export async function applyTargetSecrets(config: OpsConfig, env: NodeJS.ProcessEnv = process.env, secrets?: SecretsProvider, which: { postgres?: boolean; redis?: boolean } = { postgres: true, redis: true }): Promise<void> {
  const targets = [
    ...(which.postgres ? config.postgres.map((d) => ({ arn: d.passwordSecretArn, variable: pgPasswordEnv(d.name) })) : []),
    ...(which.redis ? config.redis.map((r) => ({ arn: r.passwordSecretArn, variable: redisPasswordEnv(r.name) })) : []),
  ];
  let provider = secrets;
  for (const { arn, variable } of targets) {
    if (!arn || env[variable]) continue;
    provider ??= new SecretsProvider();
    const value = await provider.get(arn, { maxAge: 300, transform: 'json' });
    const password = (value as { password?: unknown } | undefined)?.password;
    if (typeof password !== 'string') throw new Error(`secret ${arn} has no "password" field`);
    env[variable] = password;
  }
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

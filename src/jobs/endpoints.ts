import type { PostgresDatabaseConfig, RedisInstanceConfig } from '../config/schema.js';
import { OpsError } from '../errors.js';
import type { JobContext } from './context.js';
import { pgPasswordEnv, redisPasswordEnv } from '../config/secret-env.js';

/* Where each configured server is, after environment overrides: small on purpose, so the
 * status and health code that needs only an address does not load the backup engines. */

export function postgresUrl(ctx: JobContext, db: PostgresDatabaseConfig): string {
  const url = ctx.config.effective.postgres[db.name]?.value;
  if (!url) throw new OpsError('NO_URL', `postgres ${db.name} has no URL (set DATABASE_URL or postgres[].url)`, { exitCode: 64 });
  return withEnvPassword(url, ctx.env[pgPasswordEnv(db.name)]);
}

export function redisUrl(ctx: JobContext, r: RedisInstanceConfig): string {
  const url = ctx.config.effective.redis[r.name]?.value;
  if (!url) throw new OpsError('NO_URL', `redis ${r.name} has no URL (set REDIS_URL or redis[].url)`, { exitCode: 64 });
  return withEnvPassword(url, ctx.env[redisPasswordEnv(r.name)] ?? ctx.env.REDISCLI_AUTH);
}

/**
 * In AWS each target's password comes from its secret into its own variable
 * (OPS_PG_PASSWORD_<NAME>, OPS_REDIS_PASSWORD_<NAME>), never into the configuration; a
 * password already in the URL (from DATABASE_URL) wins.
 */
export function withEnvPassword(url: string, password: string | undefined): string {
  if (!password) return url;
  const u = new URL(url);
  if (u.password) return url;
  u.password = encodeURIComponent(password);
  return u.toString();
}

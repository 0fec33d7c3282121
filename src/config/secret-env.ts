/**
 * The environment variable that carries one target's password, chosen by its configured
 * name: `OPS_PG_PASSWORD_CALLCENTER`, `OPS_REDIS_PASSWORD_SESSIONS`. One variable per
 * target, so two databases never share one PGPASSWORD (the tasks' and functions' secrets
 * arrive under these names; PGPASSWORD and REDISCLI_AUTH still work for a single target
 * in a shell).
 */
const suffix = (name: string) => name.toUpperCase().replace(/[^A-Z0-9]/g, '_');

export const pgPasswordEnv = (name: string) => `OPS_PG_PASSWORD_${suffix(name)}`;
export const redisPasswordEnv = (name: string) => `OPS_REDIS_PASSWORD_${suffix(name)}`;

/** Names of variables that hold secrets, for scrubbing output. */
export const SECRET_ENV = /^(PGPASSWORD|REDISCLI_AUTH|OPS_PG_PASSWORD_.+|OPS_REDIS_PASSWORD_.+)$/;

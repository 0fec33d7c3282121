import { errorMessage } from '../errors.js';
import type { JobContext } from '../jobs/context.js';
import { postgresUrl, redisUrl } from '../jobs/endpoints.js';
import { withPostgres, type PgClient } from '../postgres/connect.js';
import { parseInfo, redisRequest } from '../redis/probe.js';
import { maskUrl } from '../util/mask.js';

export interface PostgresService {
  name: string;
  target: string;
  reachable: boolean;
  version: string | null;
  connections: number | null;
  maxConnections: number | null;
  databaseBytes: number | null;
  /** This server is a standby (the configured URL points at a replica). */
  inRecovery: boolean | null;
  replicas: { name: string; state: string; replayLagSeconds: number | null }[];
  detail: string;
}

export interface RedisService {
  name: string;
  target: string;
  reachable: boolean;
  version: string | null;
  usedMemoryBytes: number | null;
  maxMemoryBytes: number | null;
  persistence: { rdbLastSaveAt: string | null; rdbLastStatus: string | null; aofEnabled: boolean | null } | null;
  detail: string;
}

/**
 * The live side of status: each configured PostgreSQL (version, connections against the
 * limit, size, replicas and their replay lag) and Redis (memory against maxmemory,
 * persistence). Read-only catalogue queries and INFO; every probe is bounded.
 */
export async function inspectServices(ctx: JobContext, timeoutMs = 5_000): Promise<{ postgres: PostgresService[]; redis: RedisService[] }> {
  const [postgres, redis] = await Promise.all([
    Promise.all(ctx.config.postgres.map((db) => inspectPostgres(db.name, postgresUrl(ctx, db), timeoutMs))),
    Promise.all(ctx.config.redis.map((r) => inspectRedis(r.name, redisUrl(ctx, r), ctx.config.effective.redis[r.name]?.value ?? '', timeoutMs))),
  ]);
  return { postgres, redis };
}

async function inspectPostgres(name: string, url: string, timeoutMs: number): Promise<PostgresService> {
  const out: PostgresService = { name, target: maskUrl(url), reachable: false, version: null, connections: null, maxConnections: null, databaseBytes: null, inRecovery: null, replicas: [], detail: '' };
  try {
    await withPostgres(url, async (client) => inspectWith(client, out), 'ops-automation-status', { timeoutMs });
  } catch (error) {
    out.detail = errorMessage(error);
  }
  return out;
}

/** Connected: version, connections against the limit, size, standby or not, replicas and their lag. */
async function inspectWith(client: PgClient, out: PostgresService): Promise<void> {
  out.reachable = true;
  const { rows } = await client.query<{ version: string; connections: number; max_connections: number; bytes: string; in_recovery: boolean }>(
    `select current_setting('server_version') as version,
            (select count(*)::int from pg_stat_activity) as connections,
            current_setting('max_connections')::int as max_connections,
            pg_database_size(current_database())::text as bytes,
            pg_is_in_recovery() as in_recovery`,
  );
  const r = rows[0]!;
  Object.assign(out, { version: r.version, connections: r.connections, maxConnections: r.max_connections, databaseBytes: Number(r.bytes), inRecovery: r.in_recovery });
  // Visible to superusers and pg_monitor; an empty list without the right is not an error.
  const reps = await client.query<{ name: string; state: string; lag: string | null }>(
    'select coalesce(application_name, client_addr::text) as name, state, extract(epoch from replay_lag)::text as lag from pg_stat_replication',
  );
  out.replicas = reps.rows.map((x) => ({ name: x.name, state: x.state, replayLagSeconds: x.lag === null ? null : Number(x.lag) }));
  out.detail = `${out.connections}/${out.maxConnections} connections`;
}

async function inspectRedis(name: string, url: string, configuredUrl: string, timeoutMs: number): Promise<RedisService> {
  const out: RedisService = { name, target: maskUrl(configuredUrl), reachable: false, version: null, usedMemoryBytes: null, maxMemoryBytes: null, persistence: null, detail: '' };
  try {
    const info = parseInfo(await redisRequest(url, ['INFO'], timeoutMs));
    out.reachable = true;
    out.version = info.redis_version ?? null;
    out.usedMemoryBytes = info.used_memory ? Number(info.used_memory) : null;
    out.maxMemoryBytes = info.maxmemory !== undefined ? Number(info.maxmemory) : null;
    out.persistence = {
      rdbLastSaveAt: info.rdb_last_save_time ? new Date(Number(info.rdb_last_save_time) * 1000).toISOString() : null,
      rdbLastStatus: info.rdb_last_bgsave_status ?? null,
      aofEnabled: info.aof_enabled !== undefined ? info.aof_enabled === '1' : null,
    };
    const limit = out.maxMemoryBytes ? ` of ${out.maxMemoryBytes}` : ' (no maxmemory)';
    out.detail = `${out.usedMemoryBytes} bytes used${limit}`;
  } catch (error) {
    out.detail = errorMessage(error);
  }
  return out;
}

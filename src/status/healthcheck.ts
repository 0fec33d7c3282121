import { errorMessage } from '../errors.js';
import type { JobContext } from '../jobs/context.js';
import { postgresUrl, redisUrl } from '../jobs/endpoints.js';
import { withPostgres } from '../postgres/connect.js';
import { describeMissing, missingPitrPrivileges } from '../postgres/pitr-privileges.js';
import { redisRequest } from '../redis/probe.js';
import { maskUrl } from '../util/mask.js';

export type HealthState = 'OK' | 'DEGRADED' | 'DOWN';

export interface HealthCheck {
  check: 'repository' | 'postgres' | 'redis' | 'pitr-privileges' | 'wal-archive';
  target: string;
  ok: boolean;
  /** A failed critical check means DOWN; a failed other check means DEGRADED (seed 004). */
  critical: boolean;
  ms: number;
  detail: string;
}

export interface HealthReport {
  state: HealthState;
  at: string;
  checks: HealthCheck[];
}

/**
 * The fast subset of status, for container health checks and on-call reflexes:
 * is the repository reachable, does every PostgreSQL answer a query, does every Redis
 * answer PING. Without the repository or a database nothing can be backed up (DOWN);
 * an unreachable Redis costs one component's backups (DEGRADED). All checks run at once,
 * each bounded by `timeoutMs`.
 */
export async function healthcheck(ctx: JobContext, options: { timeoutMs?: number } = {}): Promise<HealthReport> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const timed = async (check: HealthCheck['check'], target: string, critical: boolean, probe: () => Promise<string>): Promise<HealthCheck> => {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const detail = await Promise.race([
        probe(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return { check, target, ok: true, critical, ms: Math.round(performance.now() - started), detail };
    } catch (error) {
      return { check, target, ok: false, critical, ms: Math.round(performance.now() - started), detail: errorMessage(error) };
    } finally {
      clearTimeout(timer);
    }
  };

  const checks = await Promise.all([
    timed('repository', maskUrl(ctx.config.effective.repositoryUrl.value), true, async () => {
      await ctx.repo.probe();
      return 'reachable';
    }),
    ...ctx.config.postgres.map((db) => {
      const url = postgresUrl(ctx, db);
      return timed('postgres', `${db.name} ${maskUrl(url)}`, true, () => pingPostgres(url, timeoutMs));
    }),
    // Point-in-time recovery's privileges: missing ones cost base backups or the drill, not the dumps (DEGRADED).
    ...ctx.config.postgres
      .filter((db) => db.pitr.enabled)
      .map((db) =>
        timed('pitr-privileges', db.name, false, () =>
          withPostgres(
            postgresUrl(ctx, db),
            async (c) => {
              const missing = await missingPitrPrivileges(c);
              if (missing.length > 0) throw new Error(`the role ${describeMissing(missing)}`);
              return 'REPLICATION, pg_create_restore_point, pg_switch_wal';
            },
            'ops-automation-healthcheck',
            { timeoutMs },
          ),
        ),
      ),
    // wal check without the switch (wal/check.ts says why): the server is set to archive
    // through opsctl under this name, its archiver is not failing, and the file it last
    // archived is in this repository. Broken PITR costs the window, not the dumps (DEGRADED).
    ...ctx.config.postgres
      .filter((db) => db.pitr.enabled)
      .map((db) =>
        timed('wal-archive', db.name, false, async () => {
          const { walCheck } = await import('../wal/check.js');
          const r = await walCheck(ctx.repo, db.name, postgresUrl(ctx, db), { switchWal: false });
          if (!r.ok) throw new Error(r.steps.filter((s) => !s.ok).map((s) => `${s.check}: ${s.detail}`).join('; '));
          return `archiving through opsctl; ${r.segment}, the server's last archived file, is in the archive`;
        }),
      ),
    ...ctx.config.redis.map((r) => timed('redis', `${r.name} ${maskUrl(ctx.config.effective.redis[r.name]?.value ?? '')}`, false, () => pingRedis(redisUrl(ctx, r), timeoutMs))),
  ]);
  return { state: healthState(checks), at: ctx.now().toISOString(), checks };
}

/** A failed critical check means DOWN, any other failure DEGRADED (seed 004's exit codes). */
export function healthState(checks: { ok: boolean; critical: boolean }[]): HealthState {
  return checks.some((c) => !c.ok && c.critical) ? 'DOWN' : checks.some((c) => !c.ok) ? 'DEGRADED' : 'OK';
}

function pingPostgres(url: string, timeoutMs: number): Promise<string> {
  return withPostgres(
    url,
    async (client) => {
      const { rows } = await client.query<{ version: string }>("SELECT current_setting('server_version') AS version");
      return `PostgreSQL ${rows[0]?.version ?? '?'}`;
    },
    'ops-automation-healthcheck',
    { timeoutMs },
  );
}

async function pingRedis(url: string, timeoutMs: number): Promise<string> {
  const reply = await redisRequest(url, ['PING'], timeoutMs);
  if (reply !== 'PONG') throw new Error(`unexpected reply to PING: ${reply}`);
  return reply;
}

import { findBackup } from '../backup/catalog.js';
import { backupRedis } from '../backup/redis-backup.js';
import type { RedisInstanceConfig } from '../config/schema.js';
import { errorMessage, OpsError } from '../errors.js';
import { placeRdbFile, restoreRedisLogical, type RedisRestoreResult } from '../restore/redis-restore.js';
import { verifyRedisBackup } from '../verify/redis-verify.js';
import { selectOne, selectTargets, type JobContext } from './context.js';
import { pruneAfterBackup, type BackupJobResult, type VerifyJobResult } from './postgres-jobs.js';

export function redisUrl(ctx: JobContext, r: RedisInstanceConfig): string {
  const url = ctx.config.effective.redis[r.name]?.value;
  if (!url) throw new OpsError('NO_URL', `redis ${r.name} has no URL (set REDIS_URL or redis[].url)`, { exitCode: 64 });
  return url;
}

export async function backupRedisJob(ctx: JobContext, name?: string): Promise<BackupJobResult[]> {
  const results: BackupJobResult[] = [];
  for (const r of selectTargets('redis', ctx.config.redis, name)) {
    const started = Date.now();
    try {
      const manifest = await backupRedis(
        { name: r.name, url: redisUrl(ctx, r), mode: r.mode },
        { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal, onProgress: ctx.progress ? (b) => ctx.progress?.(`backup redis/${r.name}`, b) : undefined },
      );
      ctx.metrics.backupSucceeded('redis', r.name, { at: new Date(manifest.finishedAt), durationSeconds: manifest.durationSeconds, bytes: manifest.payload.bytes });
      const keys = (manifest.details as { keys?: number } | undefined)?.keys;
      results.push({
        component: 'redis',
        name: r.name,
        ok: true,
        id: manifest.id,
        bytes: manifest.payload.bytes,
        durationSeconds: manifest.durationSeconds,
        compression: `${r.mode}${keys !== undefined ? `, ${keys} keys` : ''}, ${manifest.payload.compression}`,
        prune: await pruneAfterBackup(ctx, 'redis', r.name, r.backup.retention),
      });
    } catch (error) {
      ctx.metrics.backupFailed('redis', r.name);
      ctx.log.error(errorMessage(error), { component: 'redis', name: r.name });
      results.push({ component: 'redis', name: r.name, ok: false, durationSeconds: (Date.now() - started) / 1000, error: errorMessage(error), errorCode: (error as OpsError).code ?? 'UNEXPECTED' });
      if ((error as OpsError).code === 'BACKUP_ABORTED') break;
    }
  }
  return results;
}

export async function verifyRedisJob(ctx: JobContext, name: string | undefined, idOrLatest = 'latest'): Promise<VerifyJobResult[]> {
  const targets = idOrLatest === 'latest' ? selectTargets('redis', ctx.config.redis, name) : [selectOne('redis', ctx.config.redis, name)];
  const results: VerifyJobResult[] = [];
  for (const r of targets) {
    try {
      const entry = await findBackup(ctx.repo, 'redis', r.name, idOrLatest);
      const verification = await verifyRedisBackup(entry, { repo: ctx.repo, log: ctx.log, now: ctx.now });
      if (verification.ok) ctx.metrics.verifySucceeded('redis', r.name, { at: new Date(verification.verifiedAt), level: verification.levelPassed });
      else ctx.metrics.verifyFailed('redis', r.name);
      results.push({ component: 'redis', name: r.name, backupId: entry.id, ok: verification.ok, verification });
    } catch (error) {
      ctx.metrics.verifyFailed('redis', r.name);
      results.push({ component: 'redis', name: r.name, ok: false, error: errorMessage(error) });
    }
  }
  return results;
}

/** Logical backups into a Redis (`--target redis://…`); RDB backups as `dump.rdb` into a stopped server's directory. */
export async function restoreRedisJob(
  ctx: JobContext,
  request: { name?: string | undefined; backupId: string; target: string; confirm?: string | undefined; replace?: boolean },
): Promise<RedisRestoreResult & { name: string }> {
  const r = selectOne('redis', ctx.config.redis, request.name);
  const entry = await findBackup(ctx.repo, 'redis', r.name, request.backupId);
  const mode = (entry.manifest?.details as { mode?: string } | undefined)?.mode;
  let result: RedisRestoreResult;
  try {
    if (mode === 'logical') {
      if (!/^rediss?:\/\//.test(request.target)) throw new OpsError('BAD_TARGET', `a logical Redis backup restores into a server: --target redis://host:port (got "${request.target}")`, { exitCode: 64 });
      result = await restoreRedisLogical(entry, request.target, { confirm: request.confirm, replace: request.replace ?? false }, { repo: ctx.repo, log: ctx.log });
    } else {
      if (/^rediss?:\/\//.test(request.target)) {
        throw new OpsError('BAD_TARGET', 'an RDB backup is restored by a stopped server: --target is its data directory (see doc/runbooks/restore-redis.md)', { exitCode: 64 });
      }
      result = await placeRdbFile(entry, request.target, { confirm: request.confirm }, { repo: ctx.repo });
    }
  } catch (error) {
    ctx.metrics.restore('redis', r.name, { ok: false, seconds: 0 });
    throw error;
  }
  ctx.metrics.restore('redis', r.name, { ok: true, seconds: result.seconds });
  return { ...result, name: r.name };
}

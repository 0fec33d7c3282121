import { findBackup } from '../backup/catalog.js';
import { backupRedis } from '../backup/redis-backup.js';
import { OpsError } from '../errors.js';
import { carriedConfig } from '../config/carried.js';
import type { RedisRestoreResult } from '../restore/redis-restore.js';
import { progressOf, selectOne, selectTargets, type JobContext } from './context.js';
import { redisUrl } from './endpoints.js';
import { runBackups, withRestoreMetrics, type BackupJobResult } from './runner.js';

export async function backupRedisJob(ctx: JobContext, name?: string): Promise<BackupJobResult[]> {
  return runBackups(
    ctx,
    'redis',
    selectTargets('redis', ctx.config.redis, name),
    (r, onProgress) => backupRedis({ name: r.name, url: redisUrl(ctx, r), mode: r.mode }, { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal, onProgress, config: carriedConfig(ctx.config) }),
    (m, r) => {
      const keys = (m.details as { keys?: number } | undefined)?.keys;
      return `${r.mode}${keys !== undefined ? `, ${keys} keys` : ''}, ${m.payload.compression}`;
    },
  );
}

/** Logical backups into a Redis (`--target redis://…`); RDB backups as `dump.rdb` into a stopped server's directory. */
export async function restoreRedisJob(
  ctx: JobContext,
  request: { name?: string | undefined; backupId: string; target: string; confirm?: string | undefined; replace?: boolean },
): Promise<RedisRestoreResult & { name: string }> {
  const r = selectOne('redis', ctx.config.redis, request.name);
  const entry = await findBackup(ctx.repo, 'redis', r.name, request.backupId);
  const logical = (entry.manifest?.details as { mode?: string } | undefined)?.mode === 'logical';
  const isUrl = /^rediss?:\/\//.test(request.target);
  if (logical && !isUrl) throw new OpsError('BAD_TARGET', `a logical Redis backup restores into a server: --target redis://host:port (got "${request.target}")`, { exitCode: 64 });
  if (!logical && isUrl) throw new OpsError('BAD_TARGET', 'an RDB backup is restored by a stopped server: --target is its data directory (see doc/runbooks/restore-redis.md)', { exitCode: 64 });
  const { placeRdbFile, restoreRedisLogical } = await import('../restore/redis-restore.js');
  const result = await withRestoreMetrics(ctx, 'redis', r.name, () =>
    logical
      ? restoreRedisLogical(entry, request.target, { confirm: request.confirm, replace: request.replace ?? false }, { repo: ctx.repo, log: ctx.log, onProgress: progressOf(ctx, `restore redis/${r.name}`) })
      : placeRdbFile(entry, request.target, { confirm: request.confirm }, { repo: ctx.repo, onProgress: progressOf(ctx, `restore redis/${r.name}`) }),
  );
  return { ...result, name: r.name };
}

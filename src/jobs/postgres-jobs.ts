import { findBackup } from '../backup/catalog.js';
import { backupPostgres } from '../backup/postgres-backup.js';
import type { Drill } from '../backup/manifest.js';
import { withDatabase } from '../postgres/connect.js';
import { drillPostgres } from '../restore/postgres-drill.js';
import type { DrillDeps } from '../drill/record.js';
import { carriedConfig } from '../config/carried.js';
import { restorePostgres, type RestoreResult } from '../restore/postgres-restore.js';
import { selectOne, selectTargets, type JobContext } from './context.js';
import { postgresUrl } from './endpoints.js';
import { verifyPostgresJob } from './verify-jobs.js';
import { runBackups, withRestoreMetrics, type BackupJobResult } from './runner.js';

export type { BackupJobResult, VerifyJobResult } from './runner.js';

export async function backupPostgresJob(ctx: JobContext, name?: string): Promise<BackupJobResult[]> {
  return runBackups(
    ctx,
    'postgres',
    selectTargets('postgres', ctx.config.postgres, name),
    (db, onProgress) =>
      backupPostgres(
        { name: db.name, url: postgresUrl(ctx, db) },
        { codec: db.backup.codec, level: db.backup.level, threads: db.backup.threads },
        { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal, env: ctx.env, onProgress, config: carriedConfig(ctx.config) },
      ),
    (m) => m.payload.compression,
  );
}

export interface RestoreRequest {
  name?: string | undefined;
  backupId: string;
  /** A database name on the configured server, or a full postgresql:// URL. */
  target: string;
  confirm?: string | undefined;
  clean?: boolean;
  jobs?: number;
  workDir?: string | undefined;
}

export async function restorePostgresJob(ctx: JobContext, request: RestoreRequest): Promise<RestoreResult & { name: string }> {
  const db = selectOne('postgres', ctx.config.postgres, request.name);
  const entry = await findBackup(ctx.repo, 'postgres', db.name, request.backupId);
  const targetUrl = /^postgres(ql)?:\/\//.test(request.target) ? request.target : withDatabase(postgresUrl(ctx, db), request.target);
  const result = await withRestoreMetrics(
    ctx,
    'postgres',
    db.name,
    () =>
      restorePostgres(
        entry,
        { targetUrl, confirm: request.confirm, clean: request.clean ?? false, jobs: request.jobs ?? 1, workDir: request.workDir },
        {
          repo: ctx.repo,
          log: ctx.log,
          env: ctx.env,
          signal: ctx.signal,
          onProgress: ctx.progress ? (bytes, total) => ctx.progress?.(`restore postgres/${db.name}`, bytes, total) : undefined,
        },
      ),
    (r) => r.mismatches.length === 0,
  );
  return { ...result, name: db.name };
}

export async function drillPostgresJob(ctx: JobContext, name?: string, options: Pick<DrillDeps, 'afterRestore' | 'scratchRoot'> = {}): Promise<Drill[]> {
  const out: Drill[] = [];
  for (const db of selectTargets('postgres', ctx.config.postgres, name)) {
    let entry = await findBackup(ctx.repo, 'postgres', db.name, 'latest');
    if (!entry.verification) {
      await verifyPostgresJob(ctx, db.name, entry.id);
      entry = await findBackup(ctx.repo, 'postgres', db.name, entry.id);
    }
    const drill = await drillPostgres(entry, postgresUrl(ctx, db), {
      repo: ctx.repo,
      log: ctx.log,
      env: ctx.env,
      now: ctx.now,
      signal: ctx.signal,
      onProgress: ctx.progress ? (bytes, total) => ctx.progress?.(`drill postgres/${db.name}`, bytes, total) : undefined,
      ...options,
    });
    ctx.metrics.drill('postgres', db.name, { ok: drill.ok, at: new Date(drill.drilledAt), restoreSeconds: drill.restoreSeconds });
    out.push(drill);
  }
  return out;
}

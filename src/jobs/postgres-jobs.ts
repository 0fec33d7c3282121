import { findBackup } from '../backup/catalog.js';
import { backupPostgres } from '../backup/postgres-backup.js';
import type { Manifest, Verification, Drill } from '../backup/manifest.js';
import { pruneBackups } from '../backup/retention.js';
import type { PostgresDatabaseConfig } from '../config/schema.js';
import { errorMessage, OpsError } from '../errors.js';
import { withDatabase } from '../postgres/connect.js';
import { drillPostgres } from '../restore/postgres-drill.js';
import { restorePostgres, type RestoreResult } from '../restore/postgres-restore.js';
import { verifyPostgresBackup } from '../verify/postgres-verify.js';
import { selectOne, selectTargets, type JobContext } from './context.js';

export interface BackupJobResult {
  component: 'postgres' | 'redis' | 'knowledge';
  name: string;
  ok: boolean;
  id?: string;
  bytes?: number;
  durationSeconds: number;
  compression?: string;
  error?: string;
  errorCode?: string;
  prune?: { deleted: number; freedBytes: number } | { error: string };
}

export function postgresUrl(ctx: JobContext, db: PostgresDatabaseConfig): string {
  const url = ctx.config.effective.postgres[db.name]?.value;
  if (!url) throw new OpsError('NO_URL', `postgres ${db.name} has no URL (set DATABASE_URL or postgres[].url)`, { exitCode: 64 });
  return url;
}

export async function backupPostgresJob(ctx: JobContext, name?: string): Promise<BackupJobResult[]> {
  const results: BackupJobResult[] = [];
  for (const db of selectTargets('postgres', ctx.config.postgres, name)) {
    const started = Date.now();
    try {
      const manifest: Manifest = await backupPostgres(
        { name: db.name, url: postgresUrl(ctx, db) },
        { codec: db.backup.codec, level: db.backup.level, threads: db.backup.threads },
        {
          repo: ctx.repo,
          log: ctx.log,
          now: ctx.now,
          signal: ctx.signal,
          env: ctx.env,
          onProgress: ctx.progress ? (bytes) => ctx.progress?.(`backup postgres/${db.name}`, bytes) : undefined,
        },
      );
      ctx.metrics.backupSucceeded('postgres', db.name, { at: new Date(manifest.finishedAt), durationSeconds: manifest.durationSeconds, bytes: manifest.payload.bytes });
      const result: BackupJobResult = {
        component: 'postgres',
        name: db.name,
        ok: true,
        id: manifest.id,
        bytes: manifest.payload.bytes,
        durationSeconds: manifest.durationSeconds,
        compression: manifest.payload.compression,
      };
      result.prune = await pruneAfterBackup(ctx, 'postgres', db.name, db.backup.retention);
      results.push(result);
    } catch (error) {
      ctx.metrics.backupFailed('postgres', db.name);
      ctx.log.error(errorMessage(error), { component: 'postgres', name: db.name, code: (error as OpsError).code });
      results.push({
        component: 'postgres',
        name: db.name,
        ok: false,
        durationSeconds: (Date.now() - started) / 1000,
        error: errorMessage(error),
        errorCode: (error as OpsError).code ?? 'UNEXPECTED',
      });
      if ((error as OpsError).code === 'BACKUP_ABORTED') break;
    }
  }
  return results;
}

/** Retention after a good backup; its failure is reported but does not undo the backup. */
export async function pruneAfterBackup(
  ctx: JobContext,
  component: 'postgres' | 'redis' | 'knowledge',
  name: string,
  policy: { maxAgeDays: number; keepVerified: number },
): Promise<{ deleted: number; freedBytes: number } | { error: string }> {
  try {
    const r = await pruneBackups(ctx.repo, component, name, policy, { dryRun: false, now: ctx.now(), log: ctx.log });
    return { deleted: r.deleted, freedBytes: r.freedBytes };
  } catch (error) {
    ctx.log.warn(`retention after backup failed: ${errorMessage(error)}`, { component, name });
    return { error: errorMessage(error) };
  }
}

export interface VerifyJobResult {
  component: 'postgres' | 'redis' | 'knowledge';
  name: string;
  backupId?: string;
  ok: boolean;
  verification?: Verification;
  error?: string;
}

export async function verifyPostgresJob(ctx: JobContext, name: string | undefined, idOrLatest = 'latest'): Promise<VerifyJobResult[]> {
  const targets = idOrLatest === 'latest' ? selectTargets('postgres', ctx.config.postgres, name) : [selectOne('postgres', ctx.config.postgres, name)];
  const results: VerifyJobResult[] = [];
  for (const db of targets) {
    try {
      const entry = await findBackup(ctx.repo, 'postgres', db.name, idOrLatest);
      const verification = await verifyPostgresBackup(
        entry,
        {
          repo: ctx.repo,
          log: ctx.log,
          env: ctx.env,
          now: ctx.now,
          onProgress: ctx.progress ? (bytes) => ctx.progress?.(`verify postgres/${db.name}`, bytes, entry.manifest?.payload.bytes) : undefined,
        },
        { extraTables: db.partitions?.tables.map((t) => t.table) ?? [] },
      );
      if (verification.ok) ctx.metrics.verifySucceeded('postgres', db.name, { at: new Date(verification.verifiedAt), level: verification.levelPassed });
      else ctx.metrics.verifyFailed('postgres', db.name);
      results.push({ component: 'postgres', name: db.name, backupId: entry.id, ok: verification.ok, verification });
    } catch (error) {
      ctx.metrics.verifyFailed('postgres', db.name);
      ctx.log.error(errorMessage(error), { component: 'postgres', name: db.name });
      results.push({ component: 'postgres', name: db.name, ok: false, error: errorMessage(error) });
    }
  }
  return results;
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
  let result: RestoreResult;
  try {
    result = await restorePostgres(
      entry,
      { targetUrl, confirm: request.confirm, clean: request.clean ?? false, jobs: request.jobs ?? 1, workDir: request.workDir },
      {
        repo: ctx.repo,
        log: ctx.log,
        env: ctx.env,
        signal: ctx.signal,
        onProgress: ctx.progress ? (bytes, total) => ctx.progress?.(`restore postgres/${db.name}`, bytes, total) : undefined,
      },
    );
  } catch (error) {
    ctx.metrics.restore('postgres', db.name, { ok: false, seconds: 0 });
    throw error;
  }
  ctx.metrics.restore('postgres', db.name, { ok: result.mismatches.length === 0, seconds: result.seconds });
  return { ...result, name: db.name };
}

export async function drillPostgresJob(ctx: JobContext, name?: string): Promise<Drill[]> {
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
      onProgress: ctx.progress ? (bytes, total) => ctx.progress?.(`drill postgres/${db.name}`, bytes, total) : undefined,
    });
    ctx.metrics.drill('postgres', db.name, { ok: drill.ok, at: new Date(drill.drilledAt), restoreSeconds: drill.restoreSeconds });
    out.push(drill);
  }
  return out;
}


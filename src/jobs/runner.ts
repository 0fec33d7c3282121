import { findBackup, listBackups, newestToJudge, type BackupEntry } from '../backup/catalog.js';
import type { Component } from '../backup/layout.js';
import type { Manifest, Verification } from '../backup/manifest.js';
import { pruneBackups } from '../backup/retention.js';
import { errorMessage, type OpsError } from '../errors.js';
import { VerifyInterruptedError } from '../verify/errors.js';
import { selectOne, selectTargets, type JobContext } from './context.js';

export interface BackupJobResult {
  component: Component;
  name: string;
  ok: boolean;
  id?: string;
  bytes?: number;
  durationSeconds: number;
  compression?: string;
  error?: string;
  errorCode?: string;
  prune?: { deleted: number; freedBytes: number } | { error: string };
  /** Entries the backup did not store (knowledge: FIFOs, sockets, devices), each named. */
  skipped?: string[];
}

export interface VerifyJobResult {
  component: Component;
  name: string;
  backupId?: string;
  ok: boolean;
  verification?: Verification;
  error?: string;
}

interface Target {
  name: string;
  backup: { retention: { maxAgeDays: number; keepVerified: number } };
}

/**
 * Every component's backup job: each target in turn, metrics for success and failure,
 * retention after a good backup, a failure reported without stopping the others (an
 * abort does stop them: the task is being shut down).
 */
export async function runBackups<T extends Target>(
  ctx: JobContext,
  component: Component,
  targets: T[],
  backup: (target: T, onProgress: ((bytes: number) => void) | undefined) => Promise<Manifest>,
  summary: (manifest: Manifest, target: T) => string,
): Promise<BackupJobResult[]> {
  const results: BackupJobResult[] = [];
  for (const t of targets) {
    const started = Date.now();
    try {
      // The stored size is what progress counts; the previous backup's is the best guess of it.
      const previous = ctx.progress ? await previousBackupBytes(ctx, component, t.name) : undefined;
      const manifest = await backup(t, ctx.progress ? (b) => ctx.progress?.(`backup ${component}/${t.name}`, b, previous, true) : undefined);
      ctx.metrics.backupSucceeded(component, t.name, { at: new Date(manifest.finishedAt), durationSeconds: manifest.durationSeconds, bytes: manifest.payload.bytes });
      const skipped = (manifest.details as { skipped?: unknown } | undefined)?.skipped;
      const skippedList = Array.isArray(skipped) ? skipped.map(String) : [];
      if (skippedList.length > 0) ctx.log.warn(`${component} backup ${t.name}: ${skippedList.length} entries not backed up (not regular data): ${skippedList.join(', ')}`);
      results.push({
        component,
        name: t.name,
        ok: true,
        id: manifest.id,
        bytes: manifest.payload.bytes,
        durationSeconds: manifest.durationSeconds,
        compression: summary(manifest, t),
        ...(skippedList.length > 0 ? { skipped: skippedList } : {}),
        prune: await pruneAfterBackup(ctx, component, t.name, t.backup.retention),
      });
    } catch (error) {
      ctx.metrics.backupFailed(component, t.name);
      ctx.log.error(errorMessage(error), { component, name: t.name, code: (error as OpsError).code });
      results.push({ component, name: t.name, ok: false, durationSeconds: (Date.now() - started) / 1000, error: errorMessage(error), errorCode: (error as OpsError).code ?? 'UNEXPECTED' });
      if ((error as OpsError).code === 'BACKUP_ABORTED') break;
    }
  }
  return results;
}

/** The newest complete backup's stored size, for a progress estimate; undefined when there is none (or the listing fails). */
async function previousBackupBytes(ctx: JobContext, component: Component, name: string): Promise<number | undefined> {
  try {
    return (await listBackups(ctx.repo, component, name)).find((b) => b.manifest && !b.broken)?.manifest?.payload.bytes;
  } catch {
    return undefined;
  }
}

/** Retention after a good backup; its failure is reported but does not undo the backup. */
export async function pruneAfterBackup(
  ctx: JobContext,
  component: Component,
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

/** Every component's verify job: `latest` of each target, or one id of one target. */
export async function runVerifications<T extends { name: string }>(
  ctx: JobContext,
  component: Component,
  configured: T[],
  name: string | undefined,
  idOrLatest: string,
  verify: (entry: BackupEntry, target: T) => Promise<Verification>,
): Promise<VerifyJobResult[]> {
  const targets = idOrLatest === 'latest' ? selectTargets(component, configured, name) : [selectOne(component, configured, name)];
  const results: VerifyJobResult[] = [];
  for (const t of targets) {
    try {
      // The newest backup being broken is what must page (newestToJudge throws). Either way
      // only the manifest is read: a verify replaces the verification record, never reads it.
      const entry = idOrLatest === 'latest' ? await newestToJudge(ctx.repo, component, t.name) : await findBackup(ctx.repo, component, t.name, idOrLatest, { manifestOnly: true });
      const verification = await verify(entry, t);
      if (verification.ok) ctx.metrics.verifySucceeded(component, t.name, { at: new Date(verification.verifiedAt), level: verification.levelPassed });
      else ctx.metrics.verifyFailed(component, t.name);
      results.push({ component, name: t.name, backupId: entry.id, ok: verification.ok, verification });
    } catch (error) {
      // Interrupted: no verdict on the backup, so no failure metric and no further targets.
      if (error instanceof VerifyInterruptedError) throw error;
      ctx.metrics.verifyFailed(component, t.name);
      ctx.log.error(errorMessage(error), { component, name: t.name });
      results.push({ component, name: t.name, ok: false, error: errorMessage(error) });
    }
  }
  return results;
}

/** Restore metrics around any component's restore. */
export async function withRestoreMetrics<R extends { seconds: number }>(ctx: JobContext, component: Component, name: string, run: () => Promise<R>, ok: (r: R) => boolean = () => true): Promise<R> {
  let result: R;
  try {
    result = await run();
  } catch (error) {
    ctx.metrics.restore(component, name, { ok: false, seconds: 0 });
    throw error;
  }
  ctx.metrics.restore(component, name, { ok: ok(result), seconds: result.seconds });
  return result;
}

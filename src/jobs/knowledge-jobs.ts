import { findBackup } from '../backup/catalog.js';
import { backupKnowledge } from '../backup/knowledge-backup.js';
import { errorMessage, OpsError } from '../errors.js';
import { restoreKnowledge, type KnowledgeRestoreResult } from '../restore/knowledge-restore.js';
import { verifyKnowledgeBackup } from '../verify/knowledge-verify.js';
import { selectOne, selectTargets, type JobContext } from './context.js';
import { pruneAfterBackup, type BackupJobResult, type VerifyJobResult } from './postgres-jobs.js';

function knowledgePath(ctx: JobContext, name: string): string {
  const p = ctx.config.effective.knowledge[name]?.value;
  if (!p) throw new OpsError('NO_PATH', `knowledge ${name} has no path (set OPS_KNOWLEDGE_PATH or knowledge[].path)`, { exitCode: 64 });
  return p;
}

export async function backupKnowledgeJob(ctx: JobContext, name?: string): Promise<BackupJobResult[]> {
  const results: BackupJobResult[] = [];
  for (const k of selectTargets('knowledge', ctx.config.knowledge, name)) {
    const started = Date.now();
    try {
      const manifest = await backupKnowledge({ name: k.name, path: knowledgePath(ctx, k.name) }, { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal, onProgress: ctx.progress ? (b) => ctx.progress?.(`backup knowledge/${k.name}`, b) : undefined });
      ctx.metrics.backupSucceeded('knowledge', k.name, { at: new Date(manifest.finishedAt), durationSeconds: manifest.durationSeconds, bytes: manifest.payload.bytes });
      const d = manifest.details as { files: number };
      results.push({ component: 'knowledge', name: k.name, ok: true, id: manifest.id, bytes: manifest.payload.bytes, durationSeconds: manifest.durationSeconds, compression: `${d.files} files, ${manifest.payload.compression}`, prune: await pruneAfterBackup(ctx, 'knowledge', k.name, k.backup.retention) });
    } catch (error) {
      ctx.metrics.backupFailed('knowledge', k.name);
      ctx.log.error(errorMessage(error), { component: 'knowledge', name: k.name });
      results.push({ component: 'knowledge', name: k.name, ok: false, durationSeconds: (Date.now() - started) / 1000, error: errorMessage(error), errorCode: (error as OpsError).code ?? 'UNEXPECTED' });
      if ((error as OpsError).code === 'BACKUP_ABORTED') break;
    }
  }
  return results;
}

export async function verifyKnowledgeJob(ctx: JobContext, name: string | undefined, idOrLatest = 'latest'): Promise<VerifyJobResult[]> {
  const targets = idOrLatest === 'latest' ? selectTargets('knowledge', ctx.config.knowledge, name) : [selectOne('knowledge', ctx.config.knowledge, name)];
  const out: VerifyJobResult[] = [];
  for (const k of targets) {
    try {
      const entry = await findBackup(ctx.repo, 'knowledge', k.name, idOrLatest);
      const verification = await verifyKnowledgeBackup(entry, { repo: ctx.repo, log: ctx.log, now: ctx.now });
      if (verification.ok) ctx.metrics.verifySucceeded('knowledge', k.name, { at: new Date(verification.verifiedAt), level: verification.levelPassed });
      else ctx.metrics.verifyFailed('knowledge', k.name);
      out.push({ component: 'knowledge', name: k.name, backupId: entry.id, ok: verification.ok, verification });
    } catch (error) {
      ctx.metrics.verifyFailed('knowledge', k.name);
      out.push({ component: 'knowledge', name: k.name, ok: false, error: errorMessage(error) });
    }
  }
  return out;
}

export async function restoreKnowledgeJob(ctx: JobContext, request: { name?: string | undefined; backupId: string; target: string; confirm?: string | undefined }): Promise<KnowledgeRestoreResult & { name: string }> {
  const k = selectOne('knowledge', ctx.config.knowledge, request.name);
  const entry = await findBackup(ctx.repo, 'knowledge', k.name, request.backupId);
  try {
    const r = await restoreKnowledge(entry, request.target, { confirm: request.confirm }, { repo: ctx.repo });
    ctx.metrics.restore('knowledge', k.name, { ok: true, seconds: r.seconds });
    return { ...r, name: k.name };
  } catch (error) {
    ctx.metrics.restore('knowledge', k.name, { ok: false, seconds: 0 });
    throw error;
  }
}

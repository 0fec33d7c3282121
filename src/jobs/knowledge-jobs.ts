import { findBackup } from '../backup/catalog.js';
import { backupKnowledge } from '../backup/knowledge-backup.js';
import { OpsError } from '../errors.js';
import { carriedConfig } from '../config/carried.js';
import { restoreKnowledge, type KnowledgeRestoreResult } from '../restore/knowledge-restore.js';
import { progressOf, selectOne, selectTargets, type JobContext } from './context.js';
import { runBackups, withRestoreMetrics, type BackupJobResult } from './runner.js';

function knowledgePath(ctx: JobContext, name: string): string {
  const p = ctx.config.effective.knowledge[name]?.value;
  if (!p) throw new OpsError('NO_PATH', `knowledge ${name} has no path (set OPS_KNOWLEDGE_PATH or knowledge[].path)`, { exitCode: 64 });
  return p;
}

export async function backupKnowledgeJob(ctx: JobContext, name?: string): Promise<BackupJobResult[]> {
  return runBackups(
    ctx,
    'knowledge',
    selectTargets('knowledge', ctx.config.knowledge, name),
    (k, onProgress) => backupKnowledge({ name: k.name, path: knowledgePath(ctx, k.name) }, { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal, onProgress, config: carriedConfig(ctx.config) }),
    (m) => `${(m.details as { files: number }).files} files, ${m.payload.compression}`,
  );
}

export async function restoreKnowledgeJob(ctx: JobContext, request: { name?: string | undefined; backupId: string; target: string; confirm?: string | undefined }): Promise<KnowledgeRestoreResult & { name: string }> {
  const k = selectOne('knowledge', ctx.config.knowledge, request.name);
  const entry = await findBackup(ctx.repo, 'knowledge', k.name, request.backupId);
  const r = await withRestoreMetrics(ctx, 'knowledge', k.name, () => restoreKnowledge(entry, request.target, { confirm: request.confirm }, { repo: ctx.repo, onProgress: progressOf(ctx, `restore knowledge/${k.name}`) }));
  return { ...r, name: k.name };
}

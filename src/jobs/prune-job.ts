import { cleanupIncompleteWrites, pruneBackups, type PruneResult } from '../backup/retention.js';
import type { JobContext } from './context.js';

/** Retention over every configured backup target, plus cleanup of interrupted writes. */
export async function pruneJob(ctx: JobContext, dryRun: boolean): Promise<{ results: PruneResult[]; incompleteCleaned: number }> {
  const results: PruneResult[] = [];
  const targets = [
    ...ctx.config.postgres.map((t) => ({ component: 'postgres' as const, name: t.name, policy: t.backup.retention })),
    ...ctx.config.redis.map((t) => ({ component: 'redis' as const, name: t.name, policy: t.backup.retention })),
    ...ctx.config.knowledge.map((t) => ({ component: 'knowledge' as const, name: t.name, policy: t.backup.retention })),
  ];
  for (const t of targets) {
    results.push(await pruneBackups(ctx.repo, t.component, t.name, t.policy, { dryRun, now: ctx.now(), log: ctx.log }));
  }
  // Point-in-time recovery: base backups by the same rule, then WAL by its own age but never what a kept base needs.
  for (const db of ctx.config.postgres.filter((d) => d.pitr.enabled)) {
    const [{ baseCatalogName }, { pruneWal }, { listBackups }] = await Promise.all([import('../backup/postgres-base.js'), import('../wal/retention.js'), import('../backup/catalog.js')]);
    const bases = await pruneBackups(ctx.repo, 'postgres', baseCatalogName(db.name), db.pitr.baseBackup.retention, { dryRun, now: ctx.now(), log: ctx.log });
    results.push(bases);
    const gone = new Set(bases.decisions.filter((d) => d.action === 'delete').map((d) => d.id));
    const kept = (await listBackups(ctx.repo, 'postgres', baseCatalogName(db.name))).filter((e) => e.manifest && !e.broken && !gone.has(e.id));
    results.push(await pruneWal(ctx.repo, db.name, kept, db.pitr.walRetentionDays, { dryRun, now: ctx.now(), log: ctx.log }));
  }
  const incompleteCleaned = dryRun ? 0 : await cleanupIncompleteWrites(ctx.repo, ctx.now());
  return { results, incompleteCleaned };
}

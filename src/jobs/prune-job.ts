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
  const incompleteCleaned = dryRun ? 0 : await cleanupIncompleteWrites(ctx.repo, ctx.now());
  return { results, incompleteCleaned };
}

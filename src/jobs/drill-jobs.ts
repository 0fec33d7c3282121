import { DrillInterruptedError } from '../drill/errors.js';
import { findBackup, type BackupEntry } from '../backup/catalog.js';
import type { Component } from '../backup/layout.js';
import type { Drill } from '../backup/manifest.js';
import { drillRecord, levelsReadOk, saveDrill, type DrillDeps } from '../drill/record.js';
import { errorMessage } from '../errors.js';
import type { JobContext } from './context.js';
import { progressOf, selectTargets } from './context.js';
import { drillPostgresJob } from './postgres-jobs.js';
import { verifyKnowledgeJob, verifyRedisJob } from './verify-jobs.js';

/** Test seams and scratch placement for the drills; empty in production. */
export type DrillOptions = Pick<DrillDeps, 'afterRestore' | 'scratchRoot'> & {
  /** What restore_command's spool is for (wal/spool.ts spoolSource): segments fetched ahead are then handed over. */
  pitrSpoolSource?: string;
};

/** The newest backup, verified first if it was not: a drill of an unverified backup proves less than it says. */
async function newestVerified(ctx: JobContext, component: Component, name: string, verify: () => Promise<unknown>): Promise<BackupEntry> {
  let entry = await findBackup(ctx.repo, component, name, 'latest');
  if (!entry.verification) {
    await verify();
    entry = await findBackup(ctx.repo, component, name, entry.id);
  }
  return entry;
}

async function drillEach(
  ctx: JobContext,
  component: 'redis' | 'knowledge',
  names: string[],
  verify: (name: string, id: string) => Promise<unknown>,
  run: (entry: BackupEntry) => Promise<Drill>,
): Promise<Drill[]> {
  const out: Drill[] = [];
  for (const name of names) {
    let drill: Drill;
    let entry: BackupEntry | undefined;
    try {
      entry = await newestVerified(ctx, component, name, () => findBackup(ctx.repo, component, name, 'latest').then((e) => verify(name, e.id)));
      drill = entry.verification && !levelsReadOk(entry.verification)
        ? drillRecord(entry, ctx.now(), { scratch: '-', restoreSeconds: 0, compared: 0, failure: `verification failed: ${entry.verification.failure}` })
        : await run(entry);
      await saveDrill(ctx.repo, entry, drill, ctx.log);
    } catch (error) {
      if (error instanceof DrillInterruptedError) throw error;
      // No backup to drill at all: the record cannot go beside one, but the result and the metric still say so.
      drill = { formatVersion: 1, backupId: entry?.id ?? '-', component, name, drilledAt: ctx.now().toISOString(), ok: false, scratchDatabase: '-', restoreSeconds: 0, compared: 0, mismatches: [], failure: errorMessage(error) };
    }
    ctx.metrics.drill(component, name, { ok: drill.ok, at: new Date(drill.drilledAt), restoreSeconds: drill.restoreSeconds });
    out.push(drill);
  }
  return out;
}

export async function drillRedisJob(ctx: JobContext, name?: string, options: DrillOptions = {}): Promise<Drill[]> {
  const { drillRedis } = await import('../drill/redis-drill.js');
  return drillEach(
    ctx,
    'redis',
    selectTargets('redis', ctx.config.redis, name).map((r) => r.name),
    (n, id) => verifyRedisJob(ctx, n, id),
    (entry) => drillRedis(entry, { repo: ctx.repo, log: ctx.log, now: ctx.now, env: ctx.env, signal: ctx.signal, onProgress: progressOf(ctx, `drill redis/${entry.name}`), ...options }),
  );
}

export async function drillKnowledgeJob(ctx: JobContext, name?: string, options: DrillOptions = {}): Promise<Drill[]> {
  const { drillKnowledge } = await import('../drill/knowledge-drill.js');
  return drillEach(
    ctx,
    'knowledge',
    selectTargets('knowledge', ctx.config.knowledge, name).map((k) => k.name),
    (n, id) => verifyKnowledgeJob(ctx, n, id),
    (entry) => drillKnowledge(entry, { repo: ctx.repo, log: ctx.log, now: ctx.now, env: ctx.env, signal: ctx.signal, onProgress: progressOf(ctx, `drill knowledge/${entry.name}`), ...options }),
  );
}

/**
 * `opsctl drill postgres --pitr`: the newest base backup (verified first, with the WAL after
 * it) restored to a restore point made now, on a scratch cluster. Its metrics go under
 * `<name>-pitr`, beside the dump drill's.
 */
export async function drillPitrJob(ctx: JobContext, name: string | undefined, restoreCommand: (db: string) => string, options: DrillOptions = {}): Promise<Drill[]> {
  const [{ baseCatalogName }, { drillPitr }, { verifyPostgresBase }, { postgresUrl }] = await Promise.all([
    import('../backup/postgres-base.js'),
    import('../drill/pitr-drill.js'),
    import('../verify/base-verify.js'),
    import('./endpoints.js'),
  ]);
  const out: Drill[] = [];
  for (const db of selectTargets('postgres', ctx.config.postgres, name)) {
    let entry = await findBackup(ctx.repo, 'postgres', baseCatalogName(db.name), 'latest');
    if (!entry.verification) {
      await verifyPostgresBase(entry, db.name, { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal });
      entry = await findBackup(ctx.repo, 'postgres', baseCatalogName(db.name), entry.id);
    }
    const drill =
      entry.verification && !levelsReadOk(entry.verification)
        ? drillRecord(entry, ctx.now(), { scratch: '-', restoreSeconds: 0, compared: 0, failure: `verification failed: ${entry.verification.failure}` })
        : await drillPitr(entry, postgresUrl(ctx, db), db.name, { repo: ctx.repo, log: ctx.log, restoreCommand: restoreCommand(db.name), now: ctx.now, env: ctx.env, signal: ctx.signal, onProgress: progressOf(ctx, `drill postgres/${db.name} (point in time)`), ...(options.scratchRoot ? { scratchRoot: options.scratchRoot } : {}), ...(options.pitrSpoolSource ? { spoolSource: options.pitrSpoolSource } : {}) });
    await saveDrill(ctx.repo, entry, drill, ctx.log);
    ctx.metrics.drill('postgres', `${db.name}-pitr`, { ok: drill.ok, at: new Date(drill.drilledAt), restoreSeconds: drill.restoreSeconds });
    out.push(drill);
  }
  return out;
}

export interface DrillAllReport {
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  /** Sum of the restores' wall times: the RTO of rebuilding everything one after another. */
  rtoSeconds: number;
  /** The largest RPO of any component: how much the whole system would lose. */
  rpoSeconds: number;
  drills: (Drill & { seconds: number })[];
  /** What a whole-system drill does not cover yet, said rather than skipped silently. */
  notCovered: string[];
}

/** Seed 003's quarterly disaster-recovery test: every configured target in turn, each timed. */
export async function drillAllJob(ctx: JobContext, options: DrillOptions & { pitrRestoreCommand?: (db: string) => string } = {}): Promise<DrillAllReport> {
  const startedAt = ctx.now();
  const drills: (Drill & { seconds: number })[] = [];
  // One component that cannot be drilled at all (no backup yet) is a failed row, not the end of the report.
  const timed = async (run: () => Promise<Drill[]>, component: Component = 'postgres', name = '*') => {
    const t = Date.now();
    let result: Drill[];
    try {
      result = await run();
    } catch (error) {
      if (error instanceof DrillInterruptedError) throw error;
      result = [{ formatVersion: 1, backupId: '-', component, name, drilledAt: ctx.now().toISOString(), ok: false, scratchDatabase: '-', restoreSeconds: 0, compared: 0, mismatches: [], failure: errorMessage(error) }];
    }
    const each = (Date.now() - t) / 1000 / Math.max(1, result.length);
    for (const d of result) drills.push({ ...d, seconds: each });
  };
  if (ctx.config.postgres.length > 0) await timed(() => drillPostgresJob(ctx, undefined, options), 'postgres');
  const pitr = ctx.config.postgres.filter((d) => d.pitr.enabled);
  if (pitr.length > 0 && options.pitrRestoreCommand) {
    for (const db of pitr) await timed(() => drillPitrJob(ctx, db.name, options.pitrRestoreCommand!, options), 'postgres', `${db.name}/base`);
  }
  if (ctx.config.redis.length > 0) await timed(() => drillRedisJob(ctx, undefined, options), 'redis');
  if (ctx.config.knowledge.length > 0) await timed(() => drillKnowledgeJob(ctx, undefined, options), 'knowledge');
  return {
    startedAt: startedAt.toISOString(),
    finishedAt: ctx.now().toISOString(),
    ok: drills.length > 0 && drills.every((d) => d.ok),
    rtoSeconds: drills.reduce((a, d) => a + d.restoreSeconds, 0),
    rpoSeconds: Math.max(0, ...drills.map((d) => d.rpoSeconds ?? 0)),
    drills,
    notCovered: pitr.length === 0 ? ['point-in-time recovery: no database has postgres[].pitr.enabled, so the RPO is that of the newest dump'] : options.pitrRestoreCommand ? [] : ['point-in-time recovery: not drilled (no restore command given)'],
  };
}

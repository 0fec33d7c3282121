import { ensureSampleDatabase } from '../demo/sample-database.js';
import { errorMessage } from '../errors.js';
import { formatBytes } from '../util/format.js';
import { databaseOf, withDatabase } from '../postgres/connect.js';
import type { JobContext } from './context.js';
import { postgresUrl } from './endpoints.js';
import { backupPostgresJob } from './postgres-jobs.js';
import { pruneJob } from './prune-job.js';
import { backupRedisJob } from './redis-jobs.js';
import { backupKnowledgeJob } from './knowledge-jobs.js';
import { verifyKnowledgeJob, verifyPostgresJob, verifyRedisJob } from './verify-jobs.js';
import { ensureSampleKnowledge } from '../demo/sample-knowledge.js';
import { ensurePartitionsJob } from './partition-jobs.js';
import { checkFreshness, emitFreshness } from '../status/freshness.js';

export interface StepResult {
  step: string;
  target: string;
  /** ok, degraded (worked with a warning), failed, skipped. */
  state: 'ok' | 'degraded' | 'failed' | 'skipped';
  detail: string;
  seconds: number;
}

export interface NightlyOptions {
  /** Create missing databases with the seeds' schema and generated rows (the embedded demo). */
  sampleData?: boolean;
  sampleCalls?: number;
}

/**
 * The nightly cycle, in the order the schedules run it in AWS: sample data (demo only),
 * partitions, PostgreSQL, Redis and knowledge-base backups each followed by its
 * verification, retention, freshness (status --emit). Each step reports; one failing step does not hide the others.
 */
export async function runNightly(ctx: JobContext, options: NightlyOptions = {}): Promise<StepResult[]> {
  const steps: StepResult[] = [];
  const step = async (name: string, target: string, fn: () => Promise<Omit<StepResult, 'step' | 'target' | 'seconds'>>) => {
    const started = Date.now();
    try {
      const r = await fn();
      steps.push({ step: name, target, ...r, seconds: (Date.now() - started) / 1000 });
    } catch (error) {
      ctx.log.error(`${name} ${target}: ${errorMessage(error)}`);
      steps.push({ step: name, target, state: 'failed', detail: errorMessage(error), seconds: (Date.now() - started) / 1000 });
    }
  };

  if (options.sampleData) {
    for (const db of ctx.config.postgres) {
      await step('sample-data', `postgres/${db.name}`, async () => {
        const url = postgresUrl(ctx, db);
        const r = await ensureSampleDatabase(withDatabase(url, 'postgres'), databaseOf(url), options.sampleCalls ?? 20_000);
        return { state: 'ok', detail: r.created ? `created ${r.database} with the seeds' schema` : `${r.database} exists` };
      });
    }
  }

  for (const db of ctx.config.postgres.filter((d) => (d.partitions?.tables.length ?? 0) > 0)) {
    await step('partitions', `postgres/${db.name}`, async () => {
      const [r] = await ensurePartitionsJob(ctx, { dryRun: false, name: db.name });
      if (!r || r.status === 'failed') return { state: 'failed', detail: r && 'error' in r ? r.error : 'no result' };
      if (r.status === 'skipped') return { state: 'degraded', detail: 'skipped: another run holds the lock' };
      const created = r.tables.reduce((n, t) => n + t.created.length, 0);
      const dropped = r.tables.reduce((n, t) => n + t.dropped.length, 0);
      const coverage = Math.min(...r.tables.map((t) => t.coverage));
      const problems = r.tables.flatMap((t) => t.problems);
      const warnings = r.tables.flatMap((t) => t.warnings);
      return {
        state: problems.length ? 'failed' : warnings.length ? 'degraded' : 'ok',
        detail: problems.length ? problems.join('; ') : `${created} created, ${dropped} dropped, ${coverage} periods ahead${warnings.length ? `; ${warnings.join('; ')}` : ''}`,
      };
    });
  }

  /** Back up one target and verify what was written: the same pair for every component. */
  const backupAndVerify = async (component: 'postgres' | 'redis' | 'knowledge', name: string) => {
    const jobs = {
      postgres: [backupPostgresJob, verifyPostgresJob],
      redis: [backupRedisJob, verifyRedisJob],
      knowledge: [backupKnowledgeJob, verifyKnowledgeJob],
    } as const;
    const [backup, verify] = jobs[component];
    await step('backup', `${component}/${name}`, async () => {
      const [r] = await backup(ctx, name);
      return r?.ok ? { state: 'ok', detail: `${r.id} ${formatBytes(r.bytes ?? 0)} (${r.compression})` } : { state: 'failed', detail: r?.error ?? 'no result' };
    });
    await step('verify', `${component}/${name}`, async () => {
      const [r] = await verify(ctx, name, 'latest');
      if (!r?.ok) return { state: 'failed', detail: r?.error ?? r?.verification?.failure ?? 'no result' };
      const rows = r.verification?.rowCounts ? `, ${Object.values(r.verification.rowCounts).reduce((a, b) => a + b, 0)} rows read back` : '';
      return { state: 'ok', detail: `${r.backupId} level ${r.verification?.levelPassed}${rows}` };
    });
  };

  for (const db of ctx.config.postgres) await backupAndVerify('postgres', db.name);
  for (const r of ctx.config.redis) await backupAndVerify('redis', r.name);
  for (const k of ctx.config.knowledge) {
    if (options.sampleData) {
      await step('sample-data', `knowledge/${k.name}`, async () => {
        const dir = ctx.config.effective.knowledge[k.name]?.value;
        if (!dir || dir.startsWith('s3://')) return { state: 'skipped', detail: 'not a local directory' };
        const created = await ensureSampleKnowledge(dir);
        return { state: 'ok', detail: created ? `created ${dir} with sample documents` : `${dir} exists` };
      });
    }
    await backupAndVerify('knowledge', k.name);
  }

  await step('prune', 'all', async () => {
    const r = await pruneJob(ctx, false);
    const deleted = r.results.reduce((n, x) => n + x.deleted, 0);
    const kept = r.results.reduce((n, x) => n + x.decisions.filter((d) => d.action === 'keep').length, 0);
    return { state: 'ok', detail: `${deleted} deleted, ${kept} kept, ${r.incompleteCleaned} interrupted uploads removed` };
  });

  await step('status', 'all', async () => {
    const report = await checkFreshness(ctx);
    emitFreshness(ctx, report);
    const bad = [...report.backups, ...report.partitions].filter((r) => r.state !== 'ok');
    return bad.length === 0
      ? { state: 'ok', detail: `${report.backups.length} backup targets and ${report.partitions.length} partitioned databases fresh` }
      : { state: 'degraded', detail: bad.map((b) => `${'component' in b ? `${b.component}/${b.name}` : b.database}: ${b.state}`).join('; ') };
  });

  return steps;
}

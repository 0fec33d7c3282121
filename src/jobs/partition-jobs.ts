import { errorMessage, OpsError } from '../errors.js';
import { ensurePartitions, type PartitionRunResult } from '../partitions/run.js';
import { partitionStatus, type TableStatus } from '../partitions/status.js';
import type { JobContext } from './context.js';
import { writePartitionRecord } from '../partitions/record.js';
import { postgresUrl } from './endpoints.js';

export interface PartitionJobOptions {
  dryRun: boolean;
  /** Run as if it were this time (previews, tests). */
  at?: Date | undefined;
  tables?: string[] | undefined;
  /** Only this configured database. */
  name?: string | undefined;
  /** With `at`: drop what the plan for that time drops (otherwise refused). */
  confirmDrop?: boolean | undefined;
  /** For this run: rows a period's move may take from the default partition (instead of moveDefaultRowsLimit). */
  moveLimit?: number | undefined;
}

export type PartitionJobResult = PartitionRunResult | { database: string; status: 'failed'; error: string; errorCode: string; exitCode: 2 | 64 };

function partitionedDatabases(ctx: JobContext, name: string | undefined) {
  const dbs = ctx.config.postgres.filter((d) => d.partitions && d.partitions.tables.length > 0 && (!name || d.name === name));
  if (dbs.length === 0) {
    throw new OpsError('NO_PARTITIONED_TABLES', name ? `postgres "${name}" has no partitions.tables configured` : 'no database has partitions.tables configured', { exitCode: 64 });
  }
  return dbs;
}

/** `partitions ensure` for every configured database; metrics per database. */
export async function ensurePartitionsJob(ctx: JobContext, options: PartitionJobOptions): Promise<PartitionJobResult[]> {
  const out: PartitionJobResult[] = [];
  for (const db of partitionedDatabases(ctx, options.name)) {
    const now = options.at ?? ctx.now();
    try {
      const result = await ensurePartitions(postgresUrl(ctx, db), db, ctx.config.timezone, {
        dryRun: options.dryRun,
        now,
        realNow: ctx.now(),
        nowOverridden: options.at !== undefined,
        confirmDrops: options.confirmDrop ?? false,
        tables: options.tables,
        log: ctx.log,
        repo: ctx.repo,
        env: ctx.env,
        moveLimit: options.moveLimit,
      });
      if (!options.dryRun && (result.status === 'ok' || result.status === 'warnings')) {
        await writePartitionRecord(ctx.repo, db.name, { at: result.finishedAt, coverage: Object.fromEntries(result.tables.map((t) => [t.table, t.coverage])) });
      }
      if (!options.dryRun) {
        ctx.metrics.partitionRun(db.name, {
          ok: result.status === 'ok' || result.status === 'warnings',
          skipped: result.status === 'skipped',
          at: new Date(result.finishedAt),
          created: Object.fromEntries(result.tables.map((t) => [t.table, t.created.length])),
          dropped: Object.fromEntries(result.tables.map((t) => [t.table, t.dropped.length])),
          coverage: Object.fromEntries(result.tables.map((t) => [t.table, t.coverage])),
        });
      }
      out.push(result);
    } catch (error) {
      if (!options.dryRun) ctx.metrics.partitionRun(db.name, { ok: false, skipped: false, at: now, created: {}, dropped: {}, coverage: {} });
      ctx.log.error(`partitions ${db.name}: ${errorMessage(error)}`);
      out.push({ database: db.name, status: 'failed', error: errorMessage(error), errorCode: (error as OpsError).code ?? 'UNEXPECTED', exitCode: error instanceof OpsError ? error.exitCode : 2 });
    }
  }
  return out;
}

export async function partitionStatusJob(ctx: JobContext, options: { at?: Date | undefined; name?: string | undefined }): Promise<{ database: string; tables: TableStatus[]; error?: string }[]> {
  const out: { database: string; tables: TableStatus[]; error?: string }[] = [];
  for (const db of partitionedDatabases(ctx, options.name)) {
    try {
      out.push({ database: db.name, tables: await partitionStatus(postgresUrl(ctx, db), db, ctx.config.timezone, options.at ?? ctx.now()) });
    } catch (error) {
      out.push({ database: db.name, tables: [], error: errorMessage(error) });
    }
  }
  return out;
}

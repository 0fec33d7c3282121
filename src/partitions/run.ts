import type pg from 'pg';
import type { PostgresDatabaseConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import { connectPostgres } from '../postgres/connect.js';
import { pgErrorCode } from '../postgres/errors.js';
import { parseQualifiedName } from '../postgres/identifiers.js';
import { existingRelations, readParents } from './catalog.js';
import { DropNeedsConfirmationError, ReadReplicaError } from './errors.js';
import { periodsToHave, planTable, type TablePlan } from './plan.js';
import { countDefaultRowsSql, createStatements, defaultRowsLeftSql, dropStatements, moveStatements } from './sql.js';
import { DEFAULT_NAMING, localDateIn, partitionName, periodContaining, shiftPeriod } from './periods.js';
import { archivePartition } from './archive.js';
import type { Repository } from '../repository/repository.js';

/** One advisory lock key for partition maintenance, per database. */
export const ADVISORY_LOCK_SQL = `SELECT pg_try_advisory_lock(hashtext('ops-automation:partitions')) AS ok`;
const LOCK_SQLSTATES = new Set(['55P03', '40P01']); // lock_not_available, deadlock_detected

export interface TableResult {
  table: string;
  created: string[];
  dropped: string[];
  archived: string[];
  /** Partitions that already existed and were fine. */
  skipped: string[];
  /** The run could not do its job for this table (exit 2). */
  problems: string[];
  /** Done, but a person should look (exit 1): rows left in the default partition, a past gap. */
  warnings: string[];
  /** Rows moved out of the default partition, per new partition. */
  moved: Record<string, number>;
  coverage: number;
  /** Dry-run: the exact statements a run would execute. */
  sql?: string[];
}

export interface PartitionRunResult {
  database: string;
  /** `warnings`: every table done, something for a person to look at (exit 1); `problems`: exit 2. */
  status: 'ok' | 'warnings' | 'problems' | 'skipped';
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  tables: TableResult[];
}

export interface PartitionRunOptions {
  dryRun: boolean;
  /** The time the run acts for (`--at`). */
  now: Date;
  /** The wall clock (default: the system's); retention never drops from its period on. */
  realNow?: Date | undefined;
  /**
   * Set when `now` was given by hand (`--at`): a plan that would drop anything is refused
   * unless it is a dry run or `confirmDrops` is set, before any change is made.
   */
  nowOverridden?: boolean | undefined;
  confirmDrops?: boolean | undefined;
  /** Only these configured tables (as written in the config). */
  tables?: string[] | undefined;
  log: Log;
  /** Needed when a table archives partitions before dropping them. */
  repo?: Repository | undefined;
  env?: NodeJS.ProcessEnv;
  /** Overrides moveDefaultRowsLimit for this run (`ensure --move-limit`, a maintenance window). */
  moveLimit?: number | undefined;
}

/**
 * Ensure partitions for one database: create what is missing, retire what is past
 * retention, report everything else. One run at a time per database (advisory lock);
 * each change in its own short transaction with a lock timeout and bounded retries.
 */
export async function ensurePartitions(url: string, db: PostgresDatabaseConfig, timezone: string, options: PartitionRunOptions): Promise<PartitionRunResult> {
  const startedAt = new Date();
  const settings = db.partitions;
  const configs = (settings?.tables ?? []).filter((t) => !options.tables || options.tables.includes(t.table));
  const client = await connectPostgres(url, 'ops-automation-partitions');
  try {
    await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET lock_timeout = ${Number(settings?.lockTimeoutMs ?? 1000)}`);
    const { rows } = await client.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
    if (rows[0]?.rec) throw new ReadReplicaError(db.name);
    const lock = await client.query<{ ok: boolean }>(ADVISORY_LOCK_SQL);
    if (!lock.rows[0]?.ok) {
      options.log.warn(`partition maintenance of ${db.name} skipped: another run holds the lock`);
      return { database: db.name, status: 'skipped', dryRun: options.dryRun, startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), tables: [] };
    }
    try {
      let plans: TablePlan[] = [];
      await withLockRetries({ retries: settings?.lockRetries ?? 5, log: options.log }, 'reading the partition catalogue', async () => {
        plans = await planAll(client, configs, timezone, options.now, options.realNow ?? new Date());
      });
      const drops = plans.flatMap((p) => p.drop.map((d) => `${p.schema}.${d.name}`));
      if (options.nowOverridden && !options.dryRun && !options.confirmDrops && drops.length > 0) {
        throw new DropNeedsConfirmationError(db.name, options.now, drops);
      }
      const tables: TableResult[] = [];
      for (const plan of plans) {
        const archive = configs.find((c) => c.table === plan.table)?.archiveBeforeDrop ?? false;
        tables.push(await executePlan(client, plan, { ...options, url, database: db.name, archive, retries: settings?.lockRetries ?? 5, moveLimit: options.moveLimit ?? settings?.moveDefaultRowsLimit ?? 100_000 }));
      }
      return {
        database: db.name,
        status: tables.some((t) => t.problems.length > 0) ? 'problems' : tables.some((t) => t.warnings.length > 0) ? 'warnings' : 'ok',
        dryRun: options.dryRun,
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        tables,
      };
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtext('ops-automation:partitions'))`).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function planAll(client: pg.Client, configs: NonNullable<PostgresDatabaseConfig['partitions']>['tables'], timezone: string, now: Date, realNow: Date = new Date()): Promise<TablePlan[]> {
  const names = configs.map((t) => parseQualifiedName(t.table));
  const parents = await readParents(client, names);
  // Names the plan would create, checked in one query for tables that are not partitions of the parent.
  const candidates = configs.flatMap((t, i) => {
    const n = names[i]!;
    const tz = t.timezone ?? timezone;
    const current = periodContaining(localDateIn(now, tz), t.interval);
    const parent = parents.get(`${n.schema}.${n.name}`);
    const back = parent?.keyType ? periodsToHave(t, parent, current, parent.keyType, tz).back : 0;
    return Array.from({ length: t.ahead + 1 + back }, (_, k) => ({ schema: n.schema, name: partitionName(t.naming ?? DEFAULT_NAMING[t.interval], n.name, shiftPeriod(current, t.interval, k - back)) }));
  });
  const taken = await existingRelations(client, candidates);
  return configs.map((t, i) => {
    const n = names[i]!;
    const parent = parents.get(`${n.schema}.${n.name}`) ?? { schema: n.schema, name: n.name, children: [], unusable: `table ${t.table} does not exist` };
    return planTable(t, parent, { timezone, now, realNow }, taken);
  });
}

async function executePlan(
  client: pg.Client,
  plan: TablePlan,
  options: PartitionRunOptions & { url: string; database: string; archive: boolean; retries: number; moveLimit: number },
): Promise<TableResult> {
  const result: TableResult = {
    table: plan.table,
    created: [],
    dropped: [],
    archived: [],
    skipped: plan.existing.map((c) => c.name).filter((n) => !plan.drop.some((d) => d.name === n)),
    problems: [...plan.problems],
    warnings: [...plan.warnings],
    moved: {},
    coverage: plan.coverageBefore,
  };
  const sql: string[] = [];

  for (const action of plan.create) {
    try {
      let statements = createStatements(plan, action);
      // The statement whose row count is the number of rows moved (with a default partition).
      let move: string | undefined;
      let rowsInDefault = 0;
      if (plan.defaultPartition) {
        const { rows } = await client.query<{ n: string }>(countDefaultRowsSql(plan, action));
        rowsInDefault = Number(rows[0]?.n ?? 0);
        if (rowsInDefault > options.moveLimit) {
          result.problems.push(
            `default partition ${plan.defaultPartition} holds ${rowsInDefault} rows for [${action.from}, ${action.to}) (more than moveDefaultRowsLimit ${options.moveLimit}): ` +
              `${action.name} not created; in a maintenance window run opsctl partitions ensure --move-limit ${rowsInDefault} (doc/runbooks/partition-management-failed.md)`,
          );
          continue;
        }
        // Always the locked move when a default partition exists, even with nothing to move
        // now: a row the application inserts after the count would otherwise make ATTACH fail.
        ({ statements, move } = moveStatements(plan, action, await columnsOf(client, plan)));
      }
      if (options.dryRun) {
        sql.push('BEGIN', ...statements, 'COMMIT');
        result.created.push(action.name);
        if (rowsInDefault > 0) result.moved[action.name] = rowsInDefault;
        continue;
      }
      let moved = 0;
      await withLockRetries(options, `create ${action.name}`, async () => {
        moved = 0;
        await client.query('BEGIN');
        try {
          for (const s of statements) {
            const r = await client.query(s);
            // The move's own count: what this transaction took out of the default partition.
            if (s === move) moved = r.rowCount ?? 0;
          }
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      });
      if (moved > 0) result.moved[action.name] = moved;
      result.created.push(action.name);
      options.log.info(`created partition ${plan.schema}.${action.name}`, { from: action.from, to: action.to, moved: result.moved[action.name] ?? 0 });
    } catch (error) {
      result.problems.push(`creating ${action.name} failed: ${errorMessage(error)}`);
    }
  }

  for (const action of plan.drop) {
    const statements = dropStatements(plan, action);
    if (options.dryRun) {
      sql.push(...statements);
      result.dropped.push(action.name);
      continue;
    }
    try {
      if (options.archive) {
        if (!options.repo) throw new Error('archiveBeforeDrop is set but no repository was given');
        // The data leaves only once its archive (payload, then manifest) is stored.
        const manifest = await archivePartition(client, options.url, options.database, plan.schema, action.name, { repo: options.repo, log: options.log, ...(options.env ? { env: options.env } : {}) });
        result.archived.push(action.name);
        options.log.info(`archived partition ${plan.schema}.${action.name}`, { key: manifest.payload.key, bytes: manifest.payload.bytes });
      }
      const [detach, drop] = statements as [string, string];
      await withLockRetries(options, `detach ${action.name}`, () => client.query(detach).then(() => undefined));
      await withLockRetries(options, `drop ${action.name}`, () => client.query(drop).then(() => undefined));
      result.dropped.push(action.name);
      options.log.info(`dropped partition ${plan.schema}.${action.name}`, { from: action.from, to: action.to, mode: action.mode });
    } catch (error) {
      result.problems.push(`retiring ${action.name} failed: ${errorMessage(error)}`);
    }
  }
  if (plan.defaultPartition) {
    // Rows the run could not (or may not) place: for periods older than retention, or
    // beyond any partition. They are kept, and a person is told.
    const { rows } = await client.query<{ n: string; old: string }>(defaultRowsLeftSql(plan));
    const left = Number(rows[0]?.n ?? 0) - (options.dryRun ? Object.values(result.moved).reduce((a, b) => a + b, 0) : 0);
    const old = Number(rows[0]?.old ?? 0);
    if (left > 0) {
      result.warnings.push(
        `${left} row(s) ${options.dryRun ? 'would remain' : 'remain'} in the default partition ${plan.defaultPartition}` +
          (old > 0 ? ` (${old} older than the retention cutoff ${plan.retentionCutoff}: kept, never moved into a partition retention would drop)` : ''),
      );
    }
  }
  // In a dry run `created` lists what would be created, so the figure is what the run would reach.
  if (result.created.length === plan.create.length) result.coverage = plan.coverageAfter;
  if (options.dryRun) result.sql = sql;
  return result;
}

async function columnsOf(client: pg.Client, plan: TablePlan): Promise<string[]> {
  const { rows } = await client.query<{ attname: string }>(
    `SELECT a.attname FROM pg_attribute a WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum`,
    [plan.schema, plan.name],
  );
  return rows.map((r) => r.attname);
}

/** Retry only lock timeouts and deadlocks, a bounded number of times, backing off. */
async function withLockRetries(options: { retries: number; log: Log }, what: string, fn: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await fn();
    } catch (error) {
      const code = pgErrorCode(error);
      if (!code || !LOCK_SQLSTATES.has(code) || attempt >= options.retries) {
        if (code && LOCK_SQLSTATES.has(code)) throw new Error(`${what}: lock not granted after ${attempt + 1} attempts (${errorMessage(error)})`, { cause: error });
        throw error;
      }
      const wait = Math.min(5_000, 200 * 2 ** attempt) + Math.floor(Math.random() * 100);
      options.log.warn(`${what}: ${errorMessage(error)}; retrying in ${wait} ms`, { attempt: attempt + 1 });
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

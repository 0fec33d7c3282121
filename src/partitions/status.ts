import type pg from 'pg';
import type { PostgresDatabaseConfig } from '../config/schema.js';
import { connectPostgres } from '../postgres/connect.js';
import { quoteQualified } from '../postgres/identifiers.js';
import { planAll } from './run.js';
import { countDefaultRowsSql, defaultRowsLeftSql } from './sql.js';
import type { TablePlan } from './plan.js';

export interface TableStatus {
  table: string;
  state: 'ok' | 'degraded' | 'failed';
  /** Periods after the current one that exist, without a gap. */
  coverage: number;
  minCoverage: number;
  partitions: number;
  oldest: string | null;
  newest: string | null;
  defaultPartition: string | null;
  rowsInDefault: number | null;
  /** Every child with its bounds, oldest first (pg_partman's show_partitions); the default partition last. */
  children: { name: string; from: string | null; to: string | null; isDefault: boolean; detachPending: boolean }[];
  /** Partitions past retention that the next run will retire. */
  dueForRetention: string[];
  missing: string[];
  problems: string[];
  warnings: string[];
}

/** What `partitions status` shows: read-only, no lock needed. */
export async function partitionStatus(url: string, db: PostgresDatabaseConfig, timezone: string, now: Date): Promise<TableStatus[]> {
  const settings = db.partitions;
  if (!settings || settings.tables.length === 0) return [];
  const client = await connectPostgres(url, 'ops-automation-partitions-status');
  try {
    await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'`);
    const plans = await planAll(client, settings.tables, timezone, now, now);
    const out: TableStatus[] = [];
    for (const plan of plans) {
      let rowsInDefault: number | null = null;
      const defaultNotes: string[] = [];
      if (plan.defaultPartition) {
        const { rows } = await client.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM ONLY ${quoteQualified(plan.schema, plan.defaultPartition)}`);
        rowsInDefault = Number(rows[0]?.n ?? 0);
        if (rowsInDefault > 0 && plan.keyType) defaultNotes.push(...(await explainDefaultRows(client, plan, rowsInDefault, settings.moveDefaultRowsLimit)));
      }
      const unusable = plan.keyType === undefined;
      const degraded = plan.coverageBefore < settings.minCoverage || plan.problems.length > 0 || plan.warnings.length > 0 || (rowsInDefault ?? 0) > 0;
      const children = [...plan.existing].sort((a, b) => (a.from ?? '').localeCompare(b.from ?? ''));
      out.push({
        table: plan.table,
        state: unusable ? 'failed' : degraded ? 'degraded' : 'ok',
        coverage: plan.coverageBefore,
        minCoverage: settings.minCoverage,
        partitions: plan.existing.length,
        oldest: plan.existing[0]?.name ?? null,
        newest: plan.existing.at(-1)?.name ?? null,
        defaultPartition: plan.defaultPartition ?? null,
        rowsInDefault,
        children: [
          ...children.filter((c) => !c.isDefault).map((c) => ({ name: c.name, from: c.from, to: c.to, isDefault: false, detachPending: c.detachPending })),
          ...(plan.defaultPartition ? [{ name: plan.defaultPartition, from: null, to: null, isDefault: true, detachPending: false }] : []),
        ],
        dueForRetention: plan.drop.map((d) => d.name),
        missing: plan.create.map((c) => c.name),
        problems: plan.problems,
        warnings: [...plan.warnings, ...defaultNotes],
      });
    }
    return out;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Why rows sit in the default partition, and what to run: rows of a period `ensure` will
 * create are moved by it (unless more than moveDefaultRowsLimit, which it refuses to move
 * under a lock: a maintenance window); rows older than retention stay; any others lie
 * outside every period the configuration covers.
 */
async function explainDefaultRows(client: pg.Client, plan: TablePlan, total: number, moveLimit: number): Promise<string[]> {
  const notes: string[] = [];
  const def = `${plan.schema}.${plan.defaultPartition}`;
  let placed = 0;
  const movable: string[] = [];
  const tooMany: string[] = [];
  for (const action of plan.create) {
    const { rows } = await client.query<{ n: string }>(countDefaultRowsSql(plan, action));
    const n = Number(rows[0]?.n ?? 0);
    if (n === 0) continue;
    placed += n;
    (n > moveLimit ? tooMany : movable).push(`${n} for ${action.name}`);
  }
  if (movable.length > 0) notes.push(`default partition ${def} holds rows of periods without a partition (${movable.join(', ')}): opsctl partitions ensure creates them and moves the rows in, one period per transaction`);
  if (tooMany.length > 0) notes.push(`default partition ${def} holds more rows than moveDefaultRowsLimit ${moveLimit} (${tooMany.join(', ')}): ensure will not move them under its lock; in a maintenance window run opsctl partitions ensure --move-limit N (N at least that; each period moves in its own transaction, under the locks of a new period) (doc/runbooks/partition-management-failed.md)`);
  const { rows } = await client.query<{ n: string; old: string }>(defaultRowsLeftSql(plan));
  const old = Number(rows[0]?.old ?? 0);
  if (old > 0) notes.push(`${old} row(s) in ${def} are older than the retention cutoff ${plan.retentionCutoff}: kept there (never moved into a partition retention would drop); delete them by hand if they are not wanted`);
  const other = total - placed - old;
  if (other > 0) notes.push(`${other} row(s) in ${def} lie outside every period this configuration keeps or creates (further ahead than 'ahead', or in a gap it cannot fill: see the other notes); raise 'ahead' or create that partition by hand`);
  return notes;
}

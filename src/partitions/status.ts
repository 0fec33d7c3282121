import type { PostgresDatabaseConfig } from '../config/schema.js';
import { connectPostgres } from '../postgres/connect.js';
import { quoteQualified } from '../postgres/identifiers.js';
import { planAll } from './run.js';

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
      if (plan.defaultPartition) {
        const { rows } = await client.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM ONLY ${quoteQualified(plan.schema, plan.defaultPartition)}`);
        rowsInDefault = Number(rows[0]?.n ?? 0);
      }
      const unusable = plan.keyType === undefined;
      const degraded = plan.coverageBefore < settings.minCoverage || plan.problems.length > 0 || plan.warnings.length > 0 || (rowsInDefault ?? 0) > 0;
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
        dueForRetention: plan.drop.map((d) => d.name),
        missing: plan.create.map((c) => c.name),
        problems: plan.problems,
        warnings: plan.warnings,
      });
    }
    return out;
  } finally {
    await client.end().catch(() => undefined);
  }
}

import { quoteIdent, quoteQualified } from '../postgres/identifiers.js';
import type { KeyType } from './periods.js';
import type { CreateAction, DropAction, TablePlan } from './plan.js';

/** String literal for SQL; bounds come from our own formatting or the catalog, but are quoted all the same. */
export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function typed(value: string, keyType: KeyType): string {
  return `${literal(value)}::${keyType}`;
}

function checkName(name: string): string {
  return `${name.slice(0, 50)}_bound_chk`;
}

/**
 * A new partition without blocking traffic: created standalone (no lock on the parent),
 * given a CHECK that implies the partition constraint (so ATTACH need not scan), then
 * attached, which takes SHARE UPDATE EXCLUSIVE on the parent: reads and writes go on.
 */
export function createStatements(plan: TablePlan, action: CreateAction): string[] {
  const parent = quoteQualified(plan.schema, plan.name);
  const child = quoteQualified(plan.schema, action.name);
  const key = quoteIdent(plan.keyColumn!);
  const kt = plan.keyType!;
  return [
    `CREATE TABLE ${child} (LIKE ${parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS INCLUDING GENERATED)`,
    `ALTER TABLE ${child} ADD CONSTRAINT ${quoteIdent(checkName(action.name))} CHECK (${key} IS NOT NULL AND ${key} >= ${typed(action.from, kt)} AND ${key} < ${typed(action.to, kt)})`,
    `ALTER TABLE ${parent} ATTACH PARTITION ${child} FOR VALUES FROM (${literal(action.from)}) TO (${literal(action.to)})`,
    `ALTER TABLE ${child} DROP CONSTRAINT ${quoteIdent(checkName(action.name))}`,
  ];
}

/**
 * Rows of the default partition that belong to a new range move with it, in the same
 * transaction, exactly. Writes through the parent wait for the move (EXCLUSIVE on the
 * parent alone: reads go on), so an INSERT routes its row after the new partition is
 * attached instead of failing against the default partition's new constraint; the default
 * partition itself is taken ACCESS EXCLUSIVE up front (ATTACH needs it anyway: no lock
 * upgrade). The rows move by one statement that inserts exactly what it deletes: two
 * READ COMMITTED statements (INSERT ... SELECT, then DELETE) would delete a row committed
 * between them without having copied it. Locks go parent first, then the default
 * partition: the order an INSERT takes them.
 */
export function moveStatements(plan: TablePlan, action: CreateAction, columns: string[]): { statements: string[]; move: string } {
  const parent = quoteQualified(plan.schema, plan.name);
  const child = quoteQualified(plan.schema, action.name);
  const def = quoteQualified(plan.schema, plan.defaultPartition!);
  const key = quoteIdent(plan.keyColumn!);
  const kt = plan.keyType!;
  const cols = columns.map(quoteIdent).join(', ');
  const where = `${key} >= ${typed(action.from, kt)} AND ${key} < ${typed(action.to, kt)}`;
  const [create, check, attach, dropCheck] = createStatements(plan, action) as [string, string, string, string];
  const move = `WITH moved AS (DELETE FROM ONLY ${def} WHERE ${where} RETURNING ${cols}) INSERT INTO ${child} (${cols}) SELECT ${cols} FROM moved`;
  return { statements: [`LOCK TABLE ONLY ${parent} IN EXCLUSIVE MODE`, `LOCK TABLE ONLY ${def} IN ACCESS EXCLUSIVE MODE`, create, move, check, attach, dropCheck], move };
}

/** Rows still in the default partition after a run, and how many of them are older than the retention cutoff. */
export function defaultRowsLeftSql(plan: TablePlan): string {
  const key = quoteIdent(plan.keyColumn!);
  const cutoff = plan.retentionCutoff ? typed(plan.retentionCutoff, plan.keyType!) : 'NULL';
  return `SELECT count(*)::bigint AS n, count(*) FILTER (WHERE ${key} < ${cutoff})::bigint AS old FROM ONLY ${quoteQualified(plan.schema, plan.defaultPartition!)}`;
}

export function countDefaultRowsSql(plan: TablePlan, action: CreateAction): string {
  const def = quoteQualified(plan.schema, plan.defaultPartition!);
  const key = quoteIdent(plan.keyColumn!);
  return `SELECT count(*)::bigint AS n FROM ${def} WHERE ${key} >= ${typed(action.from, plan.keyType!)} AND ${key} < ${typed(action.to, plan.keyType!)}`;
}

/** DETACH … CONCURRENTLY and FINALIZE cannot run in a transaction block; plain DETACH can. */
export function dropStatements(plan: TablePlan, action: DropAction): string[] {
  const parent = quoteQualified(plan.schema, plan.name);
  const child = quoteQualified(plan.schema, action.name);
  const detach =
    action.mode === 'finalize'
      ? `ALTER TABLE ${parent} DETACH PARTITION ${child} FINALIZE`
      : action.mode === 'detach-concurrently'
        ? `ALTER TABLE ${parent} DETACH PARTITION ${child} CONCURRENTLY`
        : `ALTER TABLE ${parent} DETACH PARTITION ${child}`;
  return [detach, `DROP TABLE ${child}`];
}

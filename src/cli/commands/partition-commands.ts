import type { JobContext } from '../../jobs/context.js';
import { ensurePartitionsJob, partitionStatusJob, type PartitionJobOptions } from '../../jobs/partition-jobs.js';
import type { TableStatus } from '../../partitions/status.js';
import { EXIT, renderTable, worst, type CommandOutcome, type ExitCode } from '../output.js';

export async function partitionsEnsureCommand(ctx: JobContext, options: PartitionJobOptions): Promise<CommandOutcome> {
  const results = await ensurePartitionsJob(ctx, options);
  const codes: ExitCode[] = results.map((r) => (r.status === 'ok' ? EXIT.ok : r.status === 'skipped' || r.status === 'warnings' ? EXIT.degraded : 'exitCode' in r ? r.exitCode : EXIT.failed));
  const rows = results.flatMap((r) =>
    'tables' in r && r.tables.length > 0
      ? r.tables.map((t) => ({ db: r.database, status: t.problems.length ? 'PROBLEMS' : t.warnings.length ? 'WARNINGS' : 'ok', table: t.table, created: t.created.join(' ') || '-', dropped: t.dropped.join(' ') || '-', coverage: String(t.coverage), detail: [...t.problems, ...t.warnings].join('; ') + (Object.keys(t.moved).length ? ` moved from default: ${JSON.stringify(t.moved)}` : '') }))
      : [{ db: r.database, status: r.status.toUpperCase(), table: '-', created: '-', dropped: '-', coverage: '-', detail: 'error' in r ? r.error : r.status === 'skipped' ? 'another run holds the advisory lock' : '' }],
  );
  let text = renderTable(rows, [
    { header: 'DATABASE', value: (r) => r.db },
    { header: 'TABLE', value: (r) => r.table },
    { header: 'RESULT', value: (r) => r.status },
    { header: options.dryRun ? 'WOULD CREATE' : 'CREATED', value: (r) => r.created },
    { header: options.dryRun ? 'WOULD DROP' : 'DROPPED', value: (r) => r.dropped },
    { header: 'AHEAD', value: (r) => r.coverage, align: 'right' },
    { header: 'DETAIL', value: (r) => r.detail },
  ]);
  if (options.dryRun) {
    const sql = results.flatMap((r) => ('tables' in r ? r.tables.flatMap((t) => t.sql ?? []) : []));
    text += `\n\n-- dry run: the statements a run would execute\n${sql.length ? sql.map((s) => `${s};`).join('\n') : '-- (nothing to do)'}`;
  }
  return { exitCode: worst(codes), json: { results }, text };
}

export async function partitionsStatusCommand(ctx: JobContext, options: { at?: Date | undefined; name?: string | undefined }): Promise<CommandOutcome> {
  const results = await partitionStatusJob(ctx, options);
  const codes: ExitCode[] = results.flatMap((r) => (r.error ? [EXIT.failed] : r.tables.map((t) => (t.state === 'ok' ? EXIT.ok : t.state === 'degraded' ? EXIT.degraded : EXIT.failed))));
  type Row = { db: string; t: TableStatus | undefined; error: string | undefined };
  const rows: Row[] = results.flatMap((r): Row[] => (r.error ? [{ db: r.database, t: undefined, error: r.error }] : r.tables.map((t) => ({ db: r.database, t, error: undefined }))));
  const text = renderTable(rows, [
    { header: 'DATABASE', value: (r) => r.db },
    { header: 'TABLE', value: (r) => r.t?.table ?? '-' },
    { header: 'STATE', value: (r) => (r.t ? r.t.state.toUpperCase() : 'FAILED') },
    { header: 'AHEAD', value: (r) => (r.t ? `${r.t.coverage}/${r.t.minCoverage}` : '-'), align: 'right' },
    { header: 'PARTS', value: (r) => (r.t ? String(r.t.partitions) : '-'), align: 'right' },
    { header: 'OLDEST', value: (r) => r.t?.oldest ?? '-' },
    { header: 'NEWEST', value: (r) => r.t?.newest ?? '-' },
    { header: 'IN DEFAULT', value: (r) => (r.t?.rowsInDefault === null || !r.t ? '-' : String(r.t.rowsInDefault)), align: 'right' },
    { header: 'DETAIL', value: (r) => r.error ?? [...(r.t?.problems ?? []), ...(r.t?.warnings ?? []), ...(r.t?.missing.length ? [`missing: ${r.t.missing.join(' ')}`] : []), ...(r.t?.dueForRetention.length ? [`past retention: ${r.t.dueForRetention.join(' ')}`] : [])].join('; ') },
  ]);
  // Every child with its bounds (pg_partman's show_partitions), per table.
  const children = rows.flatMap((r) => (r.t ? r.t.children.map((c) => ({ db: r.db, table: r.t!.table, ...c })) : []));
  const childTable = children.length
    ? `\n\n${renderTable(children, [
        { header: 'DATABASE', value: (c) => c.db },
        { header: 'TABLE', value: (c) => c.table },
        { header: 'PARTITION', value: (c) => c.name },
        { header: 'FROM', value: (c) => (c.isDefault ? 'DEFAULT' : (c.from ?? '-')) },
        { header: 'TO', value: (c) => (c.isDefault ? '' : (c.to ?? '-')) },
        { header: 'NOTE', value: (c) => (c.detachPending ? 'detach pending (the next run finalizes it)' : '') },
      ])}`
    : '';
  return { exitCode: worst(codes.length ? codes : [EXIT.ok]), json: { results }, text: text + childTable };
}

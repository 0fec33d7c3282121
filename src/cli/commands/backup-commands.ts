import type { BaseDetails } from '../../backup/postgres-base.js';
import type { Drill } from '../../backup/manifest.js';
import type { FullReader } from '../../verify/postgres-verify.js';
import { listBackups, type BackupEntry } from '../../backup/catalog.js';
import { baseCatalogName, COMPONENTS, type Component } from '../../backup/layout.js';
import type { JobContext } from '../../jobs/context.js';
import { selectTargets } from '../../jobs/context.js';
import type { RestoreRequest } from '../../jobs/postgres-jobs.js';
import type { BackupJobResult } from '../../jobs/runner.js';
import { pruneJob } from '../../jobs/prune-job.js';

// One component's engine loads only when that component is asked for.
const postgresJobs = () => import('../../jobs/postgres-jobs.js');
const redisJobs = () => import('../../jobs/redis-jobs.js');
const knowledgeJobs = () => import('../../jobs/knowledge-jobs.js');
const verifyJobs = () => import('../../jobs/verify-jobs.js');
import { formatBytes, formatDuration } from '../../util/format.js';
import { EXIT, renderTable, withPage, writePage, type CommandOutcome, type ExitCode } from '../output.js';
import { verifyOutcome } from './verify-outcome.js';
import { runbookBase } from '../../status/runbooks.js';

export function backupOutcome(results: BackupJobResult[]): CommandOutcome {
  const failed = results.some((r) => !r.ok);
  const text = renderTable(results, [
    { header: 'COMPONENT', value: (r) => `${r.component}/${r.name}` },
    { header: 'RESULT', value: (r) => (r.ok ? 'ok' : 'FAILED') },
    { header: 'BACKUP', value: (r) => r.id ?? '-' },
    { header: 'SIZE', value: (r) => (r.bytes === undefined ? '-' : formatBytes(r.bytes)), align: 'right' },
    { header: 'TIME', value: (r) => formatDuration(r.durationSeconds), align: 'right' },
    { header: 'DETAIL', value: (r) => r.error ?? `${r.compression ?? ''}${r.skipped ? `; not backed up: ${r.skipped.join(', ')}` : ''}` },
  ]);
  return { exitCode: failed ? EXIT.failed : EXIT.ok, json: { results }, text };
}

export async function backupCommand(ctx: JobContext, component: Component, name?: string): Promise<CommandOutcome> {
  return backupOutcome(await runBackup(ctx, component, name));
}

export async function runBackup(ctx: JobContext, component: Component, name?: string): Promise<BackupJobResult[]> {
  switch (component) {
    case 'postgres':
      return (await postgresJobs()).backupPostgresJob(ctx, name);
    case 'redis':
      return (await redisJobs()).backupRedisJob(ctx, name);
    default:
      return (await knowledgeJobs()).backupKnowledgeJob(ctx, name);
  }
}

export async function verifyCommand(ctx: JobContext, component: Component, id: string, name?: string, fullReader?: FullReader): Promise<CommandOutcome> {
  switch (component) {
    case 'postgres':
      return verifyOutcome(await (await verifyJobs()).verifyPostgresJob(ctx, name, id, fullReader));
    case 'redis':
      return verifyOutcome(await (await verifyJobs()).verifyRedisJob(ctx, name, id));
    default:
      return verifyOutcome(await (await verifyJobs()).verifyKnowledgeJob(ctx, name, id));
  }
}

export async function restoreCommand(ctx: JobContext, component: Component, request: RestoreRequest & { replace?: boolean }): Promise<CommandOutcome> {
  if (component === 'redis') {
    const r = await (await redisJobs()).restoreRedisJob(ctx, request);
    const text = r.mode === 'rdb'
      ? `placed ${r.placedFile} from redis/${r.name}/${r.backupId}: start the Redis server with dir ${r.target} to load it`
      : `restored ${r.restored} keys from redis/${r.name}/${r.backupId} into ${r.target} in ${formatDuration(r.seconds)}; ${r.expiredSkipped} already expired keys skipped${r.duplicatesSkipped ? `, ${r.duplicatesSkipped} keys listed twice restored once` : ''}`;
    return { exitCode: EXIT.ok, json: r, text };
  }
  if (component === 'knowledge') {
    const r = await (await knowledgeJobs()).restoreKnowledgeJob(ctx, request);
    return { exitCode: EXIT.ok, json: r, text: `restored ${r.files} files, ${r.directories} directories, ${r.symlinks} symlinks (${formatBytes(r.bytes)}) from knowledge/${r.name}/${r.backupId} into ${r.target}, every sha256 checked` };
  }
  const result = await (await postgresJobs()).restorePostgresJob(ctx, request);
  const ok = result.mismatches.length === 0;
  const lines = [
    `restored postgres/${result.name}/${result.backupId} into ${result.target}${result.createdDatabase ? ' (created)' : ''}`,
    `${formatBytes(result.bytes)} in ${formatDuration(result.seconds)} with ${result.jobs} job(s)`,
    result.countsFrom === 'none'
      ? 'row counts not compared: the backup has no verification record (run opsctl verify first)'
      : `${result.compared} tables compared with the verification's row counts, ${result.mismatches.length} differ`,
  ];
  if (result.mismatches.length > 0) {
    lines.push(renderTable(result.mismatches, [
      { header: 'TABLE', value: (m) => m.table },
      { header: 'EXPECTED', value: (m) => String(m.expected), align: 'right' },
      { header: 'ACTUAL', value: (m) => String(m.actual), align: 'right' },
    ]));
  }
  return { exitCode: ok ? (result.countsFrom === 'none' ? EXIT.degraded : EXIT.ok) : EXIT.failed, json: result, text: lines.join('\n') };
}

const drillColumns = [
  { header: 'COMPONENT', value: (d: Drill) => `${d.component}/${d.name}` },
  { header: 'BACKUP', value: (d: Drill) => d.backupId },
  { header: 'RESULT', value: (d: Drill) => (d.ok ? ((d.schemaChanges ?? []).length > 0 ? 'ok, schema differs' : 'ok') : 'FAILED') },
  // With its unit: "0 keys" from an empty Redis is a pass, and says what was compared.
  { header: 'COMPARED', value: (d: Drill) => `${d.compared} ${d.component === 'postgres' ? 'tables' : d.component === 'redis' ? 'keys' : 'files'}`, align: 'right' as const },
  { header: 'RTO', value: (d: Drill) => formatDuration(d.restoreSeconds), align: 'right' as const },
  { header: 'RPO', value: (d: Drill) => (d.rpoSeconds === undefined ? '-' : formatDuration(d.rpoSeconds)), align: 'right' as const },
  { header: 'DETAIL', value: (d: Drill) => d.failure ?? (d.schemaChanges ?? []).slice(0, 3).join('; ') },
];

/** 2 when a drill failed; 1 when every drill passed but a restored schema differs from the live one (a person should look); else 0. */
function drillExit(drills: Drill[]): ExitCode {
  if (drills.length === 0 || drills.some((d) => !d.ok)) return EXIT.failed;
  return drills.some((d) => (d.schemaChanges ?? []).length > 0) ? EXIT.degraded : EXIT.ok;
}

export async function drillCommand(ctx: JobContext, component: Component | 'all', name?: string, html?: string, pitr?: { configPath: string; only: boolean }): Promise<CommandOutcome> {
  const jobs = await import('../../jobs/drill-jobs.js');
  const { restoreCommandFor, restoreSpoolSource } = await import('./restore-command-line.js');
  const pitrRestoreCommand = pitr ? (db: string) => restoreCommandFor(pitr.configPath, db, ctx.env) : undefined;
  const pitrSpoolSource = pitr ? await restoreSpoolSource(pitr.configPath, ctx.env) : undefined;
  // --html for one component too (it was written only for `all`, and exit 0 said nothing of it).
  const page = async (drills: Drill[]): Promise<string | undefined> => {
    if (!html) return undefined;
    const { renderDrillHtml } = await import('../../drill/report-html.js');
    const worstRpo = Math.max(0, ...drills.map((d) => d.rpoSeconds ?? 0));
    return writePage(html, renderDrillHtml({ finishedAt: ctx.now().toISOString(), ok: drills.every((d) => d.ok), rtoSeconds: drills.reduce((n, d) => n + d.restoreSeconds, 0), rpoSeconds: worstRpo, drills, runbooks: runbookBase(ctx.config.alerts.runbookBaseUrl, ctx.env) }));
  };
  if (pitr?.only) {
    const drills = await jobs.drillPitrJob(ctx, name, pitrRestoreCommand!, pitrSpoolSource ? { pitrSpoolSource } : {});
    const problem = await page(drills);
    return withPage({ exitCode: drillExit(drills), json: { results: drills }, text: renderTable(drills, drillColumns) }, problem);
  }
  if (component === 'all') {
    const report = await jobs.drillAllJob(ctx, pitrRestoreCommand ? { pitrRestoreCommand, ...(pitrSpoolSource ? { pitrSpoolSource } : {}) } : {});
    const { renderDrillHtml } = await import('../../drill/report-html.js');
    const problem = html ? await writePage(html, renderDrillHtml({ ...report, runbooks: runbookBase(ctx.config.alerts.runbookBaseUrl, ctx.env) })) : undefined;
    const text = [
      renderTable(report.drills, drillColumns),
      '',
      `total RTO ${formatDuration(report.rtoSeconds)} (restores one after another); worst RPO ${formatDuration(report.rpoSeconds)}`,
      ...report.notCovered.map((n) => `not covered: ${n}`),
    ].join('\n');
    return withPage({ exitCode: drillExit(report.drills), json: report, text }, problem);
  }
  const drills =
    component === 'postgres' ? await (await postgresJobs()).drillPostgresJob(ctx, name) : component === 'redis' ? await jobs.drillRedisJob(ctx, name) : await jobs.drillKnowledgeJob(ctx, name);
  const problem = await page(drills);
  return withPage({ exitCode: drillExit(drills), json: { results: drills }, text: renderTable(drills, drillColumns) }, problem);
}

interface ListedBackup {
  component: Component;
  name: string;
  id: string;
  complete: boolean;
  /** Why a backup that claims to be complete cannot be used. */
  broken: string | null;
  ageSeconds: number;
  bytes: number | null;
  codec: string | null;
  verified: { ok: boolean; level: number; at: string; failure?: string } | null;
  /** `dump` or `base` for postgres (a base backup is the start of point-in-time recovery), else the backup's mode. */
  kind: string;
  /** A base backup's WAL range, timeline and server: what recovery from it starts with. */
  base?: { timeline: number; startLsn: string; stopLsn: string; serverVersion: string; walArchived: boolean; systemId: string | null };
  drilled: { ok: boolean; at: string } | null;
}

export function describeEntry(entry: BackupEntry, now: Date): ListedBackup {
  const v = entry.verification;
  return {
    component: entry.component,
    id: entry.id,
    complete: entry.manifest !== undefined,
    broken: entry.broken ?? null,
    ageSeconds: Math.round((now.getTime() - entry.startedAt.getTime()) / 1000),
    bytes: entry.manifest?.payload.bytes ?? null,
    codec: entry.manifest?.payload.compression ?? null,
    verified: v ? { ok: v.ok, level: v.levelPassed, at: v.verifiedAt, ...(v.failure ? { failure: v.failure } : {}) } : null,
    drilled: entry.drill ? { ok: entry.drill.ok, at: entry.drill.drilledAt } : null,
    ...kindOf(entry),
  };
}

function kindOf(entry: BackupEntry): Pick<ListedBackup, 'kind' | 'base' | 'name'> {
  const d = entry.manifest?.details as ({ kind?: string; mode?: string } & Partial<BaseDetails>) | undefined;
  if (entry.component === 'postgres' && (d?.kind === 'base' || entry.name.endsWith('/base'))) {
    const name = entry.name.replace(/\/base$/, '');
    return d?.kind === 'base' ? { name, kind: 'base', base: { timeline: d.timeline!, startLsn: d.startLsn!, stopLsn: d.stopLsn!, serverVersion: d.serverVersion!, walArchived: d.walArchived!, systemId: d.systemId ?? null } } : { name, kind: 'base' };
  }
  return { name: entry.name, kind: entry.component === 'postgres' ? 'dump' : entry.component === 'redis' ? (d?.mode ?? 'rdb') : 'tree' };
}

export async function backupsListCommand(ctx: JobContext, component?: Component, name?: string): Promise<CommandOutcome> {
  const components = component ? [component] : [...COMPONENTS];
  const rows: ListedBackup[] = [];
  for (const c of components) {
    const configured: { name: string }[] = c === 'postgres' ? ctx.config.postgres : c === 'redis' ? ctx.config.redis : ctx.config.knowledge;
    if (!component && configured.length === 0) continue;
    for (const target of selectTargets(c, configured, name)) {
      for (const entry of await listBackups(ctx.repo, c, target.name)) rows.push(describeEntry(entry, ctx.now()));
      // Base backups (point-in-time recovery) live in a catalogue of their own beside the dumps.
      if (c === 'postgres') for (const entry of await listBackups(ctx.repo, c, baseCatalogName(target.name))) rows.push(describeEntry(entry, ctx.now()));
    }
  }
  const text = renderTable(rows, [
    { header: 'COMPONENT', value: (r) => `${r.component}/${r.name}` },
    { header: 'KIND', value: (r) => r.kind },
    { header: 'BACKUP', value: (r) => r.id },
    { header: 'AGE', value: (r) => formatDuration(r.ageSeconds), align: 'right' },
    { header: 'SIZE', value: (r) => (r.bytes === null ? '-' : formatBytes(r.bytes)), align: 'right' },
    { header: 'CODEC', value: (r) => r.codec ?? '-' },
    {
      header: 'STATE',
      value: (r) =>
        (r.broken ? `BROKEN: ${r.broken}` : !r.complete ? 'incomplete' : !r.verified ? 'unverified' : r.verified.ok ? `verified L${r.verified.level}` : 'VERIFY FAILED') +
        (r.drilled ? (r.drilled.ok ? ', drilled' : ', DRILL FAILED') : ''),
    },
    { header: 'WAL', value: (r) => (r.base ? `timeline ${r.base.timeline}, ${r.base.startLsn}-${r.base.stopLsn}${r.base.walArchived ? '' : ' (stop segment not archived)'}, PostgreSQL ${r.base.serverVersion}` : '') },
  ]);
  // A broken backup is something a person must look at: the listing still shows the rest.
  return { exitCode: rows.some((r) => r.broken) ? EXIT.degraded : EXIT.ok, json: { repository: ctx.repo.url, backups: rows }, text };
}

export async function pruneCommand(ctx: JobContext, dryRun: boolean): Promise<CommandOutcome> {
  const { results, incompleteCleaned } = await pruneJob(ctx, dryRun);
  const rows = results.flatMap((r) => r.decisions.map((d) => ({ target: `${r.component}/${r.name}`, ...d })));
  const table = renderTable(rows, [
    { header: 'COMPONENT', value: (r) => r.target },
    { header: 'BACKUP', value: (r) => r.id },
    { header: dryRun ? 'WOULD' : 'ACTION', value: (r) => r.action },
    { header: 'REASON', value: (r) => r.reason },
  ]);
  const deleted = results.reduce((n, r) => n + r.deleted, 0);
  const freed = results.reduce((n, r) => n + r.freedBytes, 0);
  const summary = `${dryRun ? 'would delete' : 'deleted'} ${deleted} backups (${formatBytes(freed)})${dryRun ? '' : `, removed ${incompleteCleaned} interrupted uploads`}`;
  return { exitCode: EXIT.ok, json: { dryRun, results, incompleteCleaned }, text: `${table}\n${summary}` };
}

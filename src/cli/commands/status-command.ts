import type { JobContext } from '../../jobs/context.js';
import { emitFreshness, type BackupFreshness } from '../../status/freshness.js';
import type { HealthState } from '../../status/healthcheck.js';
import type { StatusReport } from '../../status/report.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import { EXIT, colour, renderTable, withPage, writePage, type CommandOutcome, type ExitCode } from '../output.js';

export function stateExitCode(state: HealthState): ExitCode {
  return state === 'OK' ? EXIT.ok : state === 'DEGRADED' ? EXIT.degraded : EXIT.failed;
}

/**
 * `opsctl status [--emit] [--html FILE]`: freshness per target, the live services, and in
 * AWS (or with --remote) schedules, tasks and alarms; --emit also pushes the gauges the
 * stale alarms use.
 */
export async function statusCommand(ctx: JobContext, options: { emit: boolean; html?: string | undefined }): Promise<CommandOutcome> {
  const { buildStatusReport } = await import('../../status/report.js');
  const { runbookBase } = await import('../../status/runbooks.js');
  const { report, freshness } = await buildStatusReport(ctx, { links: { runbooks: runbookBase(ctx.config.alerts.runbookBaseUrl, ctx.env) } });
  if (options.emit) emitFreshness(ctx, freshness);
  const problem = options.html ? await writeStatusHtml(report, options.html) : undefined;
  return withPage(statusOutcome(report), problem);
}

/** The page, or the sentence saying why it was not written (the report is printed either way). */
export async function writeStatusHtml(report: StatusReport, file: string): Promise<string | undefined> {
  const { renderStatusHtml } = await import('../../status/html.js');
  return writePage(file, renderStatusHtml(report));
}

export function statusOutcome(report: StatusReport): CommandOutcome {
  const exitCode = stateExitCode(report.state);
  const c = colour(process.stdout.isTTY === true);
  const paint = (state: string) => (state === 'ok' || state === 'OK' || state === 'ENABLED' ? c.green(state.toUpperCase()) : state === 'missing' || state === 'error' || state === 'DOWN' ? c.red(state.toUpperCase()) : c.yellow(state.toUpperCase()));
  const backups = renderTable(report.backups, [
    { header: 'COMPONENT', value: (b) => `${b.component}/${b.name}` },
    { header: 'STATE', value: (b) => paint(b.state) },
    { header: 'NEWEST', value: (b) => b.newest?.id ?? '-' },
    { header: 'AGE', value: (b) => (b.newest ? formatDuration(b.newest.ageSeconds) : '-'), align: 'right' },
    { header: 'LIMIT', value: (b) => formatDuration(b.thresholdSeconds), align: 'right' },
    { header: 'SIZE', value: (b) => (b.newest ? formatBytes(b.newest.bytes) : '-'), align: 'right' },
    { header: 'VERIFIED', value: (b) => (b.newest?.verifyOk === true ? `L${b.newest.verifiedLevel}` : b.newest?.verifyOk === false ? 'FAILED' : '-') },
    { header: 'DRILL', value: (b) => drillText(b.drill) },
    { header: 'DETAIL', value: (b) => b.detail },
  ]);
  const parts = report.partitions.length
    ? renderTable(report.partitions, [
        { header: 'DATABASE', value: (p) => p.database },
        { header: 'STATE', value: (p) => paint(p.state) },
        { header: 'LAST RUN', value: (p) => (p.ageSeconds === null ? '-' : `${formatDuration(p.ageSeconds)} ago`), align: 'right' },
        { header: 'AHEAD (MIN)', value: (p) => `${Object.values(p.coverage).length ? Math.min(...Object.values(p.coverage)) : '-'} (${p.minCoverage})`, align: 'right' },
        { header: 'DETAIL', value: (p) => p.detail },
      ]) +
      '\n\n' +
      renderTable(
        report.partitions.flatMap((p) => p.tables.map((t) => ({ database: p.database, ...t }))),
        [
          { header: 'TABLE', value: (t) => `${t.database}:${t.table}` },
          { header: 'AHEAD', value: (t) => String(t.coverage), align: 'right' },
          { header: 'PARTITIONS', value: (t) => String(t.partitions), align: 'right' },
          { header: 'OLDEST', value: (t) => t.oldest ?? '-' },
          { header: 'ROWS IN DEFAULT', value: (t) => (t.rowsInDefault === null ? 'no default' : String(t.rowsInDefault)), align: 'right' },
        ],
      )
    : '';
  const pitr = report.pitr?.length
    ? renderTable(report.pitr, [
        { header: 'PITR', value: (p) => p.database },
        { header: 'STATE', value: (p) => paint(p.state) },
        { header: 'NEWEST WAL', value: (p) => (p.newestSegment ? `${formatDuration(p.newestSegment.ageSeconds)} ago` : '-'), align: 'right' },
        { header: 'BASE', value: (p) => (p.baseBackup ? `${formatDuration(p.baseBackup.ageSeconds)} ago` : '-'), align: 'right' },
        { header: 'WINDOW', value: (p) => (p.window ? `${p.window.from} .. ${p.window.to}` : '-') },
        { header: 'DETAIL', value: (p) => p.detail },
      ])
    : '';
  const services = renderTable(
    [
      ...report.services.postgres.map((s) => ({ service: `postgres/${s.name}`, state: s.reachable ? 'OK' : 'DOWN', version: s.version ?? '-', detail: s.reachable ? `${s.connections}/${s.maxConnections} connections, ${formatBytes(s.databaseBytes ?? 0)}${s.inRecovery ? ', STANDBY' : ''}${s.replicas.map((r) => `, replica ${r.name} lag ${r.replayLagSeconds ?? 0} s`).join('')}` : s.detail })),
      ...report.services.redis.map((s) => ({ service: `redis/${s.name}`, state: s.reachable ? 'OK' : 'DEGRADED', version: s.version ?? '-', detail: s.reachable ? `${formatBytes(s.usedMemoryBytes ?? 0)} used${s.maxMemoryBytes ? ` of ${formatBytes(s.maxMemoryBytes)}` : ', no maxmemory'}; rdb ${s.persistence?.rdbLastStatus ?? '-'}, aof ${s.persistence?.aofEnabled ? 'on' : 'off'}` : s.detail })),
    ],
    [
      { header: 'SERVICE', value: (r) => r.service },
      { header: 'STATE', value: (r) => paint(r.state) },
      { header: 'VERSION', value: (r) => r.version },
      { header: 'DETAIL', value: (r) => r.detail },
    ],
  );
  const aws = report.aws
    ? renderTable(
        [
          ...report.aws.alarmsFiring.map((a) => ({ what: `alarm ${a.name}`, state: 'ALARM', detail: a.reason })),
          ...report.aws.schedules.map((s) => ({ what: `schedule ${s.name}`, state: s.state, detail: '' })),
          ...report.aws.tasks.map((t) => ({ what: `task ${t.family}`, state: t.ok ? 'OK' : t.status, detail: `${t.status} exit ${t.exitCode ?? '-'} ${t.stoppedReason ?? ''}`.trim() })),
          ...report.aws.errors.map((e) => ({ what: 'AWS', state: 'ERROR', detail: e })),
        ],
        [
          { header: 'AWS', value: (r) => r.what },
          { header: 'STATE', value: (r) => paint(r.state) },
          { header: 'DETAIL', value: (r) => r.detail },
        ],
      )
    : '';
  const verdict = report.state === 'OK' ? c.green('OK') : report.state === 'DEGRADED' ? c.yellow('DEGRADED') : c.red('DOWN');
  const reasons = report.reasons.map((r) => `  - ${r}`).join('\n');
  return { exitCode, json: report, text: [`status: ${verdict}${reasons ? `\n${reasons}` : ''}`, backups, parts, pitr, services, aws].filter(Boolean).join('\n\n') };
}

/** `opsctl healthcheck`: reachability only, with seed 004's exit codes (0 OK, 1 DEGRADED, 2 DOWN). */
export async function healthcheckCommand(ctx: JobContext, options: { timeoutMs: number }): Promise<CommandOutcome> {
  const { healthcheck } = await import('../../status/healthcheck.js');
  const report = await healthcheck(ctx, options);
  const c = colour(process.stdout.isTTY === true);
  const table = renderTable(report.checks, [
    { header: 'CHECK', value: (h) => h.check },
    { header: 'TARGET', value: (h) => h.target },
    { header: 'STATE', value: (h) => (h.ok ? c.green('OK') : h.critical ? c.red('DOWN') : c.yellow('DEGRADED')) },
    { header: 'MS', value: (h) => String(h.ms), align: 'right' },
    { header: 'DETAIL', value: (h) => h.detail },
  ]);
  const verdict = report.state === 'OK' ? c.green('OK') : report.state === 'DEGRADED' ? c.yellow('DEGRADED') : c.red('DOWN');
  return { exitCode: stateExitCode(report.state), json: report, text: `health: ${verdict}\n\n${table}` };
}

/** `ok 3d ago`, `FAILED 2h ago`, `-`; `(stale)` past alerts.drillStaleDays since the last success. */
export function drillText(d: BackupFreshness['drill']): string {
  if (!d) return '-';
  const stale = !d.lastSuccess || d.lastSuccess.ageSeconds > d.thresholdSeconds ? ' (stale)' : '';
  return `${d.ok ? 'ok' : 'FAILED'} ${formatDuration(d.ageSeconds)} ago${stale}`;
}

import type { Component } from '../backup/layout.js';
import { formatBytes, formatDuration } from '../util/format.js';
import type { BackupFreshness, PartitionFreshness } from './freshness.js';
import type { HealthState } from './healthcheck.js';
import { stateLight, type StatusReport } from './report.js';

/** The page's look, shared by every report rendered as HTML (status, drill). */
export const PAGE_STYLE = `<style>
.ops-status{font:14px/1.4 system-ui,sans-serif;color:#202124;margin:0;padding:0}
.ops-status .banner{color:#fff;font-weight:700;font-size:28px;padding:16px 20px}
.ops-status .meta{margin:8px 20px;color:#5f6368}
.ops-status .reasons{margin:8px 20px 8px 36px;padding:0}
.ops-status h2{font-size:16px;margin:16px 20px 6px}
.ops-status table{border-collapse:collapse;margin:0 20px;width:calc(100% - 40px)}
.ops-status th,.ops-status td{border-bottom:1px solid #dadce0;padding:4px 8px;text-align:left;vertical-align:top}
.ops-status td.light{color:#fff;font-weight:700;width:90px}
</style>`;

/** The banner and cell colours; the page test reads them back from a screenshot. */
export const STATE_COLOURS = { OK: '#1e8e3e', DEGRADED: '#f9ab00', DOWN: '#d93025' } as const;

const STALE_RUNBOOK: Record<Component, string> = { postgres: 'postgres-backup-stale.md', redis: 'redis-backup-stale.md', knowledge: 'knowledge-backup-stale.md' };

export const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function backupRunbook(b: BackupFreshness): string {
  return b.state === 'verify-failed' ? 'verify-failed.md' : b.state === 'drill-failed' ? 'drill-failed.md' : STALE_RUNBOOK[b.component];
}
function partitionRunbook(p: PartitionFreshness): string {
  return p.state === 'coverage-low' ? 'partition-coverage-low.md' : p.state === 'error' ? 'partition-management-failed.md' : 'partition-creation-stale.md';
}

/**
 * Seed 001's system-status page: the status report as one self-contained HTML document
 * (no scripts, no external resources), green / yellow / red per check. Written by
 * `opsctl status --html FILE` and served by the status Lambda as a CloudWatch dashboard
 * custom widget, behind the console's own sign-in.
 */
export function renderStatusHtml(report: StatusReport, options: { fragment?: boolean } = {}): string {
  const runbooks = report.links?.runbooks ?? 'doc/runbooks/';
  const cell = (light: HealthState, text: string) => `<td class="light" style="background:${STATE_COLOURS[light]}">${esc(text)}</td>`;
  const link = (file: string) => `<a href="${esc(runbooks + file)}">runbook</a>`;

  const backups = report.backups
    .map((b) => {
      const light = stateLight(b.state);
      const n = b.newest;
      const verified = !n ? '-' : n.verifyOk === true ? `level ${n.verifiedLevel}` : n.verifyOk === false ? 'FAILED' : 'not yet';
      const d = b.drill;
      const drill = !d ? '-' : `${d.ok ? 'passed' : 'FAILED'} ${formatDuration(d.ageSeconds)} ago${!d.lastSuccess || d.lastSuccess.ageSeconds > d.thresholdSeconds ? ' (stale)' : ''}`;
      return `<tr>${cell(light, light)}<td>${esc(`${b.component}/${b.name}`)}</td><td>${esc(n?.id ?? '-')}</td><td>${n ? esc(formatDuration(n.ageSeconds)) : '-'} / ${esc(formatDuration(b.thresholdSeconds))}</td><td>${n ? esc(formatBytes(n.bytes)) : '-'}</td><td>${esc(verified)}</td><td>${esc(drill)}</td><td>${esc(b.detail)}${light === 'OK' ? '' : ` ${link(backupRunbook(b))}`}</td></tr>`;
    })
    .join('\n');
  const partitions = report.partitions
    .map((p) => {
      const light = stateLight(p.state);
      const coverage = p.tables.map((t) => `${t.table} ${t.coverage} (oldest ${t.oldest ?? '-'}, ${t.rowsInDefault === null ? 'no default' : `${t.rowsInDefault} rows in default`})`).join('; ');
      return `<tr>${cell(light, light)}<td>${esc(p.database)}</td><td>${p.ageSeconds === null ? 'never' : `${esc(formatDuration(p.ageSeconds))} ago`}</td><td>${esc(coverage || '-')} (min ${p.minCoverage})</td><td>${esc(p.detail)}${light === 'OK' ? '' : ` ${link(partitionRunbook(p))}`}</td></tr>`;
    })
    .join('\n');
  const services = [
    ...report.services.postgres.map(
      (s) =>
        `<tr>${cell(s.reachable ? 'OK' : 'DOWN', s.reachable ? 'OK' : 'DOWN')}<td>postgres/${esc(s.name)}</td><td>${esc(s.version ?? '-')}</td><td>${esc(s.reachable ? `${s.connections}/${s.maxConnections} connections, ${formatBytes(s.databaseBytes ?? 0)}${s.replicas.length ? `, replicas: ${s.replicas.map((r) => `${r.name} lag ${r.replayLagSeconds ?? 0} s`).join(', ')}` : ''}` : s.detail)}</td></tr>`,
    ),
    ...report.services.redis.map(
      (s) =>
        `<tr>${cell(s.reachable ? 'OK' : 'DEGRADED', s.reachable ? 'OK' : 'DEGRADED')}<td>redis/${esc(s.name)}</td><td>${esc(s.version ?? '-')}</td><td>${esc(s.reachable ? `${formatBytes(s.usedMemoryBytes ?? 0)} used${s.maxMemoryBytes ? ` of ${formatBytes(s.maxMemoryBytes)}` : ''}; rdb ${s.persistence?.rdbLastStatus ?? '-'}, aof ${s.persistence?.aofEnabled ? 'on' : 'off'}` : s.detail)}</td></tr>`,
    ),
  ].join('\n');
  const aws = report.aws
    ? `<h2>AWS</h2>
<table><tr><th></th><th>schedule / task / alarm</th><th>detail</th></tr>
${report.aws.alarmsFiring.map((a) => `<tr>${cell('DEGRADED', 'ALARM')}<td>${esc(a.name)}</td><td>${esc(a.reason)}</td></tr>`).join('\n')}
${report.aws.schedules.map((s) => `<tr>${cell(s.state === 'ENABLED' ? 'OK' : 'DEGRADED', s.state)}<td>${esc(s.name)}</td><td></td></tr>`).join('\n')}
${report.aws.tasks.map((t) => `<tr>${cell(t.ok ? 'OK' : 'DEGRADED', t.status)}<td>${esc(t.family)}</td><td>exit ${esc(t.exitCode ?? '-')} ${esc(t.stoppedReason ?? '')}</td></tr>`).join('\n')}
</table>`
    : '';
  const dashboard = report.links?.dashboard ? ` · <a href="${esc(report.links.dashboard)}">dashboard</a>` : '';
  const body = `<div class="ops-status">
<div class="banner" id="state" style="background:${STATE_COLOURS[report.state]}">${esc(report.state)}</div>
<p class="meta">ops-automation status at ${esc(report.at)}${dashboard} · <a href="${esc(runbooks)}">runbooks</a></p>
${report.reasons.length ? `<ul class="reasons">${report.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>` : ''}
<h2>Backups</h2>
<table><tr><th></th><th>component</th><th>newest</th><th>age / limit</th><th>size</th><th>verified</th><th>drill</th><th>detail</th></tr>
${backups}
</table>
${partitions ? `<h2>Partitions</h2>\n<table><tr><th></th><th>database</th><th>last run</th><th>periods ahead</th><th>detail</th></tr>\n${partitions}\n</table>` : ''}
${report.pitr?.length ? `<h2>Point-in-time recovery</h2>\n<table><tr><th></th><th>database</th><th>newest WAL</th><th>base backup</th><th>window</th><th>detail</th></tr>\n${report.pitr.map((p) => `<tr>${cell(stateLight(p.state), stateLight(p.state))}<td>${esc(p.database)}</td><td>${p.newestSegment ? esc(`${formatDuration(p.newestSegment.ageSeconds)} ago`) : '-'}</td><td>${p.baseBackup ? esc(`${formatDuration(p.baseBackup.ageSeconds)} ago`) : '-'}</td><td>${p.window ? esc(`${p.window.from} .. ${p.window.to}`) : '-'}</td><td>${esc(p.detail)}</td></tr>`).join('\n')}\n</table>` : ''}
<h2>Services</h2>
<table><tr><th></th><th>service</th><th>version</th><th>detail</th></tr>
${services}
</table>
${aws}
</div>`;
  const style = PAGE_STYLE;
  if (options.fragment) return `${style}\n${body}`;
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>ops-automation: ${esc(report.state)}</title>${style}</head>\n<body style="margin:0">\n${body}\n</body></html>\n`;
}

import type { Drill } from '../backup/manifest.js';
import { esc, PAGE_STYLE, STATE_COLOURS } from '../status/html.js';
import { formatDuration } from '../util/format.js';

export interface DrillReportLike {
  finishedAt: string;
  ok: boolean;
  rtoSeconds: number;
  rpoSeconds: number;
  drills: Drill[];
  notCovered?: string[];
  /** Absolute base of the runbooks (status/runbooks.ts): a failed drill links drill-failed.md there. */
  runbooks?: string;
}

/** `opsctl drill all --html FILE`: the report as one self-contained page in the status page's style. */
export function renderDrillHtml(report: DrillReportLike): string {
  // The CLI's words: a drill passed or FAILED (DOWN is the status page's word for a service).
  const state = report.ok ? (report.drills.some((d) => (d.schemaChanges ?? []).length > 0) ? 'DEGRADED' : 'OK') : 'FAILED';
  const colour = STATE_COLOURS[state === 'FAILED' ? 'DOWN' : state];
  const runbook = report.runbooks ? ` <a href="${esc(`${report.runbooks}drill-failed.md`)}">runbook</a>` : '';
  const cell = (ok: boolean, text: string) => `<td class="light" style="background:${ok ? STATE_COLOURS.OK : STATE_COLOURS.DOWN}">${esc(text)}</td>`;
  const rows = report.drills
    .map((d) => {
      const detail = d.failure ?? [`${d.compared} compared`, ...(d.schemaChanges?.length ? [`schema differs from live: ${d.schemaChanges.length} line(s)`] : [])].join('; ');
      return `<tr>${cell(d.ok, d.ok ? 'OK' : 'FAILED')}<td>${esc(`${d.component}/${d.name}`)}</td><td>${esc(d.backupId)}</td><td>${esc(formatDuration(d.restoreSeconds))}</td><td>${esc(d.rpoSeconds === undefined ? '-' : formatDuration(d.rpoSeconds))}</td><td>${esc(detail)}${d.ok ? '' : runbook}</td></tr>`;
    })
    .join('\n');
  const body = `<div class="ops-status">
<div class="banner" id="state" style="background:${colour}">${esc(state)}</div>
<p class="meta">ops-automation restore drill at ${esc(report.finishedAt)} · RTO ${esc(formatDuration(report.rtoSeconds))} in total · RPO ${esc(formatDuration(report.rpoSeconds))} at worst</p>
<h2>Components</h2>
<table><tr><th></th><th>component</th><th>backup</th><th>RTO</th><th>RPO</th><th>detail</th></tr>
${rows}
</table>
${report.notCovered?.length ? `<h2>Not covered</h2>\n<ul class="reasons">${report.notCovered.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
</div>`;
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>ops-automation drill: ${esc(state)}</title>${PAGE_STYLE}</head>\n<body style="margin:0">\n${body}\n</body></html>\n`;
}

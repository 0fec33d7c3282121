import { drPlan, type PlanItem } from '../../dr/plan.js';
import { drRestore, parseAssignments, type DrRestoreResult } from '../../dr/restore.js';
import type { Log } from '../../log.js';
import { openRepository } from '../../repository/open.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import { EXIT, renderTable, type CommandOutcome } from '../output.js';

/** `opsctl dr plan --repository URL`: what the repository alone can restore, and how. No configuration is read. */
export async function drPlanCommand(repositoryUrl: string, now = new Date()): Promise<CommandOutcome> {
  const plan = await drPlan(openRepository(repositoryUrl), repositoryUrl);
  const age = (iso: string) => (iso === '-' ? '-' : `${formatDuration((now.getTime() - new Date(iso).getTime()) / 1000)} ago`);
  const table = renderTable(plan.items, [
    { header: 'TARGET', value: (i: PlanItem) => `${i.component}/${i.name}` },
    { header: 'BACKUP', value: (i) => i.backupId },
    { header: 'TAKEN', value: (i) => age(i.takenAt) },
    { header: 'SIZE', value: (i) => (i.bytes ? formatBytes(i.bytes) : '-'), align: 'right' },
    { header: 'VERIFIED', value: (i) => (i.verifiedLevel === null ? 'no' : `level ${i.verifiedLevel}`) },
    { header: 'DRILL', value: (i) => (i.drillOk === null ? '-' : i.drillOk ? 'ok' : 'FAILED') },
    { header: 'FROM', value: (i) => i.source ?? '-' },
  ]);
  const commands = plan.items.filter((i) => i.command !== '-').map((i) => `# ${i.component}/${i.name}: ${i.format}; target: ${i.targetKind}${i.problem ? `; ${i.problem}` : ''}\n${i.command}`);
  const text = plan.items.length === 0 ? `${repositoryUrl} holds no backups` : `${table}\n\n${commands.join('\n\n')}`;
  const exitCode = plan.items.length === 0 || plan.items.every((i) => i.command === '-') ? EXIT.failed : plan.items.some((i) => i.problem) ? EXIT.degraded : EXIT.ok;
  return { exitCode, json: plan, text };
}

export interface DrRestoreOptions {
  target: string[];
  backup: string[];
  confirm: string[];
}

/** `opsctl dr restore --repository URL --target C/N=T …`: the plan's restores into named targets. */
export async function drRestoreCommand(repositoryUrl: string, options: DrRestoreOptions, log: Log): Promise<CommandOutcome> {
  const request = { targets: parseAssignments(options.target, '--target'), backups: parseAssignments(options.backup, '--backup'), confirms: parseAssignments(options.confirm, '--confirm') };
  const results = await drRestore(openRepository(repositoryUrl), request, { log });
  const text = renderTable(results, [
    { header: 'TARGET', value: (r: DrRestoreResult) => `${r.component}/${r.name}` },
    { header: 'BACKUP', value: (r) => r.backupId },
    { header: 'INTO', value: (r) => r.target },
    { header: 'RESULT', value: (r) => (r.ok ? 'ok' : 'FAILED') },
    { header: 'RTO', value: (r) => formatDuration(r.seconds), align: 'right' },
    { header: 'DETAIL', value: (r) => r.detail },
  ]);
  const total = results.reduce((a, r) => a + r.seconds, 0);
  return { exitCode: results.every((r) => r.ok) ? EXIT.ok : EXIT.failed, json: { repository: repositoryUrl, results, rtoSeconds: total }, text: `${text}\n\ntotal RTO ${formatDuration(total)}` };
}

import type { JobContext } from '../../jobs/context.js';
import { runNightly, type StepResult } from '../../jobs/nightly.js';
import { formatDuration } from '../../util/format.js';
import { EXIT, renderTable, worst, type CommandOutcome, type ExitCode } from '../output.js';

export function stepsOutcome(title: string, steps: StepResult[]): CommandOutcome {
  const exitCode: ExitCode = steps.some((s) => s.state === 'failed') ? EXIT.failed : steps.some((s) => s.state === 'degraded') ? EXIT.degraded : EXIT.ok;
  const table = renderTable(steps, [
    { header: 'STEP', value: (s) => s.step },
    { header: 'TARGET', value: (s) => s.target },
    { header: 'STATE', value: (s) => s.state.toUpperCase() },
    { header: 'TIME', value: (s) => formatDuration(s.seconds), align: 'right' },
    { header: 'DETAIL', value: (s) => s.detail },
  ]);
  const verdict = exitCode === EXIT.ok ? 'OK' : exitCode === EXIT.degraded ? 'DEGRADED' : 'FAILED';
  return { exitCode, json: { job: title, state: verdict, steps }, text: `${title}: ${verdict}\n${table}` };
}

export async function nightlyCommand(ctx: JobContext, options: { sampleData: boolean; sampleCalls?: number }): Promise<CommandOutcome> {
  return stepsOutcome('nightly', await runNightly(ctx, options));
}

/** Every scheduled job of the stack, by the name `opsctl run` and the schedules use. */
export const JOBS = ['nightly', 'backup-postgres', 'backup-redis', 'backup-knowledge', 'verify', 'partitions', 'drill', 'prune', 'status'] as const;
export type JobName = (typeof JOBS)[number];

/**
 * `opsctl run <job>`: a scheduled job now, here, through the same code its schedule runs
 * (the Fargate task's opsctl command, or the Lambda's core), with its result.
 */
export async function runJobCommand(ctx: JobContext, job: JobName, options: { name?: string | undefined; sampleData?: boolean; sampleCalls?: number }): Promise<CommandOutcome> {
  const backups = () => import('./backup-commands.js');
  switch (job) {
    case 'nightly':
      return nightlyCommand(ctx, { sampleData: options.sampleData ?? false, sampleCalls: options.sampleCalls });
    case 'backup-postgres':
    case 'backup-redis':
    case 'backup-knowledge':
      return (await backups()).backupCommand(ctx, job.slice('backup-'.length) as 'postgres' | 'redis' | 'knowledge', options.name);
    case 'verify': {
      const { verifyCommand } = await backups();
      const outcomes: CommandOutcome[] = [];
      for (const component of ['postgres', 'redis', 'knowledge'] as const) {
        if (ctx.config[component].length > 0) outcomes.push(await verifyCommand(ctx, component, 'latest', options.name && ctx.config[component].some((t) => t.name === options.name) ? options.name : undefined));
      }
      return {
        exitCode: worst(outcomes.map((o) => o.exitCode)),
        json: { results: outcomes.flatMap((o) => (o.json as { results: unknown[] }).results) },
        text: outcomes.map((o) => o.text).join('\n\n'),
      };
    }
    case 'partitions':
      return (await import('./partition-commands.js')).partitionsEnsureCommand(ctx, { dryRun: false, name: options.name });
    case 'drill':
      return (await backups()).drillCommand(ctx, 'postgres', options.name);
    case 'prune':
      return (await backups()).pruneCommand(ctx, false);
    case 'status':
      return (await import('./status-command.js')).statusCommand(ctx, { emit: true });
  }
}

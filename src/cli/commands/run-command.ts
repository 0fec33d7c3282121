import type { JobContext } from '../../jobs/context.js';
import { runNightly, type StepResult } from '../../jobs/nightly.js';
import { formatDuration } from '../../util/format.js';
import { EXIT, renderTable, type CommandOutcome, type ExitCode } from '../output.js';

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

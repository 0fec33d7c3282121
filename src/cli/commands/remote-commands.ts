import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { RemoteError } from '../../remote/errors.js';
import { invokeFunction, runTask, type InvokeResult, type RemoteClients, type TaskRun } from '../../remote/run.js';
import { describeStack, type DeployedStack } from '../../remote/stack.js';
import { healthState } from '../../status/healthcheck.js';
import type { StatusReport } from '../../status/report.js';
import { EXIT, renderTable, withPage, worst, type CommandOutcome, type ExitCode } from '../output.js';
import type { JobName } from './run-command.js';
import { stateExitCode, statusOutcome, writeStatusHtml } from './status-command.js';

export interface RemoteDeps extends RemoteClients {
  cfn: Pick<CloudFormationClient, 'send'>;
  onStatus?: (line: string) => void;
  pollMs?: number;
  signal?: AbortSignal | undefined;
}

/** The real clients; progress of remote work goes to stderr, stdout keeps the result. */
export async function defaultRemoteDeps(signal?: AbortSignal): Promise<RemoteDeps> {
  const [{ CloudFormationClient }, { LambdaClient }, { ECSClient }] = await Promise.all([import('@aws-sdk/client-cloudformation'), import('@aws-sdk/client-lambda'), import('@aws-sdk/client-ecs')]);
  const onStatus = (line: string) => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  return { cfn: new CloudFormationClient({}), lambda: new LambdaClient({}), ecs: new ECSClient({}), onStatus, signal };
}

async function statusFromStack(stack: DeployedStack, deps: RemoteDeps): Promise<StatusReport> {
  const r = await invokeFunction(deps, stack.functions.status, {});
  if (!r.ok) throw new RemoteError('REMOTE_FAILED', `the status function ${r.functionName} failed: ${r.error?.errorMessage ?? 'unknown error'}`);
  return r.payload as StatusReport;
}

/** `opsctl status --remote STACK`: the deployed status function's report, shown exactly as locally. */
export async function remoteStatusCommand(stackName: string, deps: RemoteDeps, options: { html?: string | undefined } = {}): Promise<CommandOutcome> {
  const report = await statusFromStack(await describeStack(stackName, deps.cfn), deps);
  const problem = options.html ? await writeStatusHtml(report, options.html) : undefined;
  return withPage(statusOutcome(report), problem);
}

/** `opsctl healthcheck --remote STACK`: reachability as the deployed jobs see it (from inside the VPC). */
export async function remoteHealthcheckCommand(stackName: string, deps: RemoteDeps): Promise<CommandOutcome> {
  const report = await statusFromStack(await describeStack(stackName, deps.cfn), deps);
  const checks = [
    ...report.services.postgres.map((s) => ({ check: 'postgres', target: `${s.name} ${s.target}`, ok: s.reachable, critical: true, detail: s.reachable ? `PostgreSQL ${s.version}` : s.detail })),
    ...report.services.redis.map((s) => ({ check: 'redis', target: `${s.name} ${s.target}`, ok: s.reachable, critical: false, detail: s.reachable ? 'reachable' : s.detail })),
  ];
  const state = healthState(checks);
  const text = `health (${stackName}): ${state}\n\n${renderTable(checks, [
    { header: 'CHECK', value: (c) => c.check },
    { header: 'TARGET', value: (c) => c.target },
    { header: 'STATE', value: (c) => (c.ok ? 'OK' : c.critical ? 'DOWN' : 'DEGRADED') },
    { header: 'DETAIL', value: (c) => c.detail },
  ])}`;
  return { exitCode: stateExitCode(state), json: { state, stack: stackName, at: report.at, checks }, text };
}

/** opsctl's own exit codes travel through the task's exit code. */
function taskExit(run: TaskRun): ExitCode {
  if (run.exitCode === 0) return EXIT.ok;
  if (run.exitCode === 1) return EXIT.degraded;
  return EXIT.failed;
}

/**
 * `opsctl run <job> --remote STACK`: the deployed job, now. Lambda jobs are invoked and
 * return their result; Fargate jobs are started from their task definition and waited
 * for (each status change on stderr) unless `--no-wait`.
 */
export async function remoteRunCommand(stackName: string, job: JobName, deps: RemoteDeps, options: { name?: string | undefined; wait: boolean }): Promise<CommandOutcome> {
  if (job === 'nightly') throw new RemoteError('BAD_JOB', 'nightly is the local cycle; in AWS each job has its own schedule: run them one by one', { exitCode: 64 });
  const stack = await describeStack(stackName, deps.cfn);
  const invoked: InvokeResult[] = [];
  const tasks: TaskRun[] = [];
  if (job === 'partitions' || job === 'status' || job === 'verify') {
    const payloads =
      job === 'verify'
        ? [...new Set(Object.keys(stack.tasks).filter((k) => k.startsWith('backup-')).map((k) => k.slice('backup-'.length).split(':')[0]!))].map((component) => ({ component, ...(options.name ? { name: options.name } : {}) }))
        : [options.name ? { name: options.name } : {}];
    for (const payload of payloads) {
      deps.onStatus?.(`invoking ${job} ${JSON.stringify(payload)}`);
      invoked.push(await invokeFunction(deps, stack.functions[job], job === 'status' ? {} : payload));
    }
  } else {
    const prefix = job === 'prune' ? 'prune' : `${job}:`;
    const keys = Object.keys(stack.tasks).filter((k) => (job === 'prune' ? k === 'prune' : k.startsWith(prefix) && (!options.name || k === `${prefix}${options.name}`)));
    if (keys.length === 0) throw new RemoteError('UNKNOWN_JOB', `stack ${stackName} has no ${job}${options.name ? ` for ${options.name}` : ''}; it has: ${Object.keys(stack.tasks).sort().join(', ')}`, { exitCode: 64 });
    for (const key of keys) {
      tasks.push(await runTask(deps, stack, key, { wait: options.wait, pollMs: deps.pollMs, signal: deps.signal, onStatus: (s) => deps.onStatus?.(`${key}: ${s}`) }));
    }
  }
  const exitCode = worst([...invoked.map((r) => (r.ok ? EXIT.ok : EXIT.failed)), ...tasks.map((t) => (options.wait ? taskExit(t) : EXIT.ok))]);
  const rows = [
    ...invoked.map((r) => ({ job, where: r.functionName, state: r.ok ? 'OK' : 'FAILED', detail: r.ok ? summary(r.payload) : `${r.error?.errorType ?? 'Error'}: ${r.error?.errorMessage ?? ''}` })),
    ...tasks.map((t) => ({ job: t.job, where: t.taskArn, state: options.wait ? (t.exitCode === 0 ? 'OK' : 'FAILED') : t.status, detail: options.wait ? `exit ${t.exitCode ?? '-'}${t.stoppedReason ? `, ${t.stoppedReason}` : ''}; log stream ${t.logStream}` : `started; log stream ${t.logStream}` })),
  ];
  return {
    exitCode,
    json: { stack: stackName, job, invoked, tasks },
    text: renderTable(rows, [
      { header: 'JOB', value: (r) => r.job },
      { header: 'RUN', value: (r) => r.where },
      { header: 'STATE', value: (r) => r.state },
      { header: 'DETAIL', value: (r) => r.detail },
    ]),
  };
}

/** The payload came from JSON.parse, so it serialises back. */
function summary(payload: unknown): string {
  const text = JSON.stringify(payload);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

import type { ECSClient } from '@aws-sdk/client-ecs';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { RemoteError } from './errors.js';
import type { DeployedStack } from './stack.js';

export interface RemoteClients {
  lambda: Pick<LambdaClient, 'send'>;
  ecs: Pick<ECSClient, 'send'>;
}

/** A Lambda's answer: its JSON result, or the error it threw (a failed verification, a failed partition run). */
export interface InvokeResult {
  functionName: string;
  ok: boolean;
  payload: unknown;
  error?: { errorType?: string; errorMessage?: string } | undefined;
}

export async function invokeFunction(clients: RemoteClients, functionName: string, payload: unknown): Promise<InvokeResult> {
  const { InvokeCommand } = await import('@aws-sdk/client-lambda');
  const out = await clients.lambda.send(new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(payload ?? {})) }));
  const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
  const parsed = text ? (JSON.parse(text) as unknown) : null;
  if (out.FunctionError) return { functionName, ok: false, payload: null, error: parsed as InvokeResult['error'] };
  return { functionName, ok: true, payload: parsed };
}

export interface TaskRun {
  job: string;
  taskArn: string;
  status: string;
  exitCode: number | null;
  stoppedReason: string | null;
  logStream: string | null;
}

/**
 * Start a job's task definition (its command is the job) and, unless told not to, wait
 * for it to stop, reporting each status change: the operator never needs the console.
 */
export async function runTask(
  clients: RemoteClients,
  stack: DeployedStack,
  job: string,
  options: { wait: boolean; pollMs?: number; onStatus?: (status: string) => void; signal?: AbortSignal | undefined },
): Promise<TaskRun> {
  const taskDefinition = stack.tasks[job];
  if (!taskDefinition) throw new RemoteError('UNKNOWN_JOB', `stack ${stack.stackName} has no task for ${job}; it has: ${Object.keys(stack.tasks).sort().join(', ')}`, { exitCode: 64 });
  const { RunTaskCommand, DescribeTasksCommand } = await import('@aws-sdk/client-ecs');
  const started = await clients.ecs.send(
    new RunTaskCommand({
      cluster: stack.clusterArn,
      taskDefinition,
      launchType: 'FARGATE',
      count: 1,
      startedBy: 'opsctl-remote',
      propagateTags: 'TASK_DEFINITION',
      networkConfiguration: { awsvpcConfiguration: { subnets: stack.subnets, securityGroups: stack.securityGroups, assignPublicIp: 'DISABLED' } },
    }),
  );
  const failure = started.failures?.[0];
  const taskArn = started.tasks?.[0]?.taskArn;
  if (failure || !taskArn) throw new RemoteError('RUN_TASK_FAILED', `ECS did not start ${job}: ${failure?.reason ?? 'no task returned'}${failure?.detail ? ` (${failure.detail})` : ''}`);
  const run: TaskRun = { job, taskArn, status: started.tasks?.[0]?.lastStatus ?? 'PROVISIONING', exitCode: null, stoppedReason: null, logStream: `ops/opsctl/${taskArn.split('/').pop()}` };
  options.onStatus?.(run.status);
  if (!options.wait) return run;
  for (;;) {
    if (options.signal?.aborted) throw new RemoteError('INTERRUPTED', `stopped waiting for ${taskArn}; the task goes on`);
    await new Promise((r) => setTimeout(r, options.pollMs ?? 5_000));
    const out = await clients.ecs.send(new DescribeTasksCommand({ cluster: stack.clusterArn, tasks: [taskArn] }));
    const t = out.tasks?.[0];
    const status = t?.lastStatus ?? 'UNKNOWN';
    if (status !== run.status) options.onStatus?.(status);
    run.status = status;
    if (status === 'STOPPED') {
      run.exitCode = t?.containers?.[0]?.exitCode ?? null;
      run.stoppedReason = t?.stoppedReason ?? null;
      return run;
    }
  }
}

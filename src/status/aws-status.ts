import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { ECSClient, Task } from '@aws-sdk/client-ecs';
import type { SchedulerClient } from '@aws-sdk/client-scheduler';
import { errorMessage } from '../errors.js';

/** Where the deployed stack's moving parts are; the stack sets these on the status function. */
export interface AwsTarget {
  stackName: string;
  scheduleGroup: string;
  clusterArn: string;
}

export interface AwsClients {
  scheduler: Pick<SchedulerClient, 'send'>;
  ecs: Pick<ECSClient, 'send'>;
  cloudwatch: Pick<CloudWatchClient, 'send'>;
}

export interface AwsStatus {
  schedules: { name: string; state: string }[];
  /** The newest task of each job (task definition family) that ECS still knows (it keeps stopped tasks about an hour). */
  tasks: { family: string; status: string; exitCode: number | null; stoppedReason: string | null; startedAt: string | null; stoppedAt: string | null; ok: boolean }[];
  alarmsFiring: { name: string; since: string | null; reason: string }[];
  errors: string[];
}

export function awsTargetFromEnv(env: NodeJS.ProcessEnv): AwsTarget | undefined {
  const { OPS_STACK_NAME: stackName, OPS_SCHEDULE_GROUP: scheduleGroup, OPS_CLUSTER_ARN: clusterArn } = env;
  return stackName && scheduleGroup && clusterArn ? { stackName, scheduleGroup, clusterArn } : undefined;
}

export async function defaultAwsClients(): Promise<AwsClients> {
  const [{ SchedulerClient }, { ECSClient }, { CloudWatchClient }] = await Promise.all([import('@aws-sdk/client-scheduler'), import('@aws-sdk/client-ecs'), import('@aws-sdk/client-cloudwatch')]);
  return { scheduler: new SchedulerClient({}), ecs: new ECSClient({}), cloudwatch: new CloudWatchClient({}) };
}

/** Each part is asked on its own: one API refusing (a missing permission) leaves the others in the report. */
export async function inspectAws(clients: AwsClients, target: AwsTarget): Promise<AwsStatus> {
  const [{ ListSchedulesCommand }, { ListTasksCommand, DescribeTasksCommand }, { DescribeAlarmsCommand }] = await Promise.all([
    import('@aws-sdk/client-scheduler'),
    import('@aws-sdk/client-ecs'),
    import('@aws-sdk/client-cloudwatch'),
  ]);
  const out: AwsStatus = { schedules: [], tasks: [], alarmsFiring: [], errors: [] };
  const attempt = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (error) {
      out.errors.push(`${what}: ${errorMessage(error)}`);
    }
  };
  await Promise.all([
    attempt('schedules', async () => {
      let token: string | undefined;
      do {
        const page = await clients.scheduler.send(new ListSchedulesCommand({ GroupName: target.scheduleGroup, NextToken: token }));
        for (const s of page.Schedules ?? []) out.schedules.push({ name: s.Name ?? '?', state: s.State ?? '?' });
        token = page.NextToken;
      } while (token);
    }),
    attempt('tasks', async () => {
      const arns: string[] = [];
      for (const desiredStatus of ['RUNNING', 'STOPPED'] as const) {
        const page = await clients.ecs.send(new ListTasksCommand({ cluster: target.clusterArn, desiredStatus, maxResults: 100 }));
        arns.push(...(page.taskArns ?? []));
      }
      const tasks: Task[] = [];
      for (let i = 0; i < arns.length; i += 100) {
        const page = await clients.ecs.send(new DescribeTasksCommand({ cluster: target.clusterArn, tasks: arns.slice(i, i + 100) }));
        tasks.push(...(page.tasks ?? []));
      }
      const newest = new Map<string, Task>();
      for (const t of tasks) {
        const family = familyOf(t.taskDefinitionArn);
        const when = (x: Task) => (x.startedAt ?? x.createdAt)?.getTime() ?? 0;
        const seen = newest.get(family);
        if (!seen || when(t) > when(seen)) newest.set(family, t);
      }
      for (const [family, t] of [...newest.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        const exitCode = t.containers?.[0]?.exitCode ?? null;
        const failedToStart = t.stopCode === 'TaskFailedToStart';
        out.tasks.push({
          family,
          status: t.lastStatus ?? '?',
          exitCode,
          stoppedReason: t.stoppedReason ?? null,
          startedAt: t.startedAt?.toISOString() ?? null,
          stoppedAt: t.stoppedAt?.toISOString() ?? null,
          ok: !failedToStart && (t.lastStatus !== 'STOPPED' || exitCode === 0),
        });
      }
    }),
    attempt('alarms', async () => {
      let token: string | undefined;
      do {
        const page = await clients.cloudwatch.send(new DescribeAlarmsCommand({ AlarmNamePrefix: `${target.stackName}-`, StateValue: 'ALARM', NextToken: token }));
        for (const a of page.MetricAlarms ?? []) out.alarmsFiring.push({ name: a.AlarmName ?? '?', since: a.StateUpdatedTimestamp?.toISOString() ?? null, reason: a.StateReason ?? '' });
        token = page.NextToken;
      } while (token);
    }),
  ]);
  return out;
}

function familyOf(arn: string | undefined): string {
  return /task-definition\/([^:]+)/.exec(arn ?? '')?.[1] ?? arn ?? '?';
}

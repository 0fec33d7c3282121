import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import { startRestore } from '../../lambdas/restore/handler.js';
import { restoreEnvironmentSchema } from '../../lambdas/restore/request.js';

const ENV = restoreEnvironmentSchema.parse({
  OPS_CLUSTER_ARN: 'arn:aws:ecs:eu-central-1:111122223333:cluster/ops',
  OPS_RESTORE_TASK_DEFINITION: 'arn:aws:ecs:eu-central-1:111122223333:task-definition/ops-restore:7',
  OPS_CONTAINER_NAME: 'opsctl',
  OPS_SUBNETS: 'subnet-a, subnet-b',
  OPS_SECURITY_GROUPS: 'sg-1',
  OPS_LOG_GROUP: '/ops/tasks',
  OPS_LOG_STREAM_PREFIX: 'restore',
});

/** ECS has no local equivalent: this stands in for RunTask and records the request. */
function mockedEcs(response: { tasks?: { taskArn: string }[]; failures?: { reason: string; detail?: string }[] }) {
  const sent: RunTaskCommand[] = [];
  const ecs: Pick<ECSClient, 'send'> = { send: (async (command: RunTaskCommand) => {
    sent.push(command);
    return response;
  }) as unknown as ECSClient['send'] };
  return { ecs, sent };
}

describe('restore Lambda (ECS RunTask mocked: no local ECS)', () => {
  it('starts exactly one Fargate task running opsctl restore, and says where its logs are', async () => {
    const { ecs, sent } = mockedEcs({ tasks: [{ taskArn: 'arn:aws:ecs:eu-central-1:111122223333:task/ops/0123abcd' }] });
    const out = await startRestore(
      { component: 'postgres', backupId: '20260214T040000Z', target: 'callcenter_restore', confirm: 'callcenter_restore', clean: true, jobs: 4 },
      'req-1',
      { ecs, env: ENV },
    );
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0]!.input, {
      cluster: 'arn:aws:ecs:eu-central-1:111122223333:cluster/ops',
      taskDefinition: 'arn:aws:ecs:eu-central-1:111122223333:task-definition/ops-restore:7',
      launchType: 'FARGATE',
      count: 1,
      startedBy: 'ops-restore-req-1',
      propagateTags: 'TASK_DEFINITION',
      networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-a', 'subnet-b'], securityGroups: ['sg-1'], assignPublicIp: 'DISABLED' } },
      overrides: {
        containerOverrides: [
          {
            name: 'opsctl',
            command: ['--json', 'restore', 'postgres', '20260214T040000Z', '--target', 'callcenter_restore', '--confirm', 'callcenter_restore', '--clean', '--jobs', '4'],
          },
        ],
      },
    });
    assert.deepEqual(out, {
      taskArn: 'arn:aws:ecs:eu-central-1:111122223333:task/ops/0123abcd',
      command: ['--json', 'restore', 'postgres', '20260214T040000Z', '--target', 'callcenter_restore', '--confirm', 'callcenter_restore', '--clean', '--jobs', '4'],
      logGroup: '/ops/tasks',
      logStream: 'restore/opsctl/0123abcd',
    });
  });

  it('rejects a bad request with every problem, before calling ECS', async () => {
    const { ecs, sent } = mockedEcs({});
    await assert.rejects(
      startRestore({ component: 'mysql', backupId: 'yesterday', jobs: 0, extra: 1 }, 'r', { ecs, env: ENV }),
      (e: Error) => /component/.test(e.message) && /backupId/.test(e.message) && /target/.test(e.message) && /jobs/.test(e.message) && /extra/.test(e.message),
    );
    assert.equal(sent.length, 0);
  });

  it('a point-in-time restore into a database: --base and the moment go to the task; a moment without base, two moments, or base for redis are refused', async () => {
    const { ecs, sent } = mockedEcs({ tasks: [{ taskArn: 'arn:aws:ecs:eu-central-1:111122223333:task/ops/0456' }] });
    const out = await startRestore({ component: 'postgres', backupId: 'latest', target: 'callcenter_0300', base: true, to: '2026-12-04 03:00:00+00' }, 'r', { ecs, env: ENV });
    assert.deepEqual(out.command, ['--json', 'restore', 'postgres', 'latest', '--target', 'callcenter_0300', '--base', '--to', '2026-12-04 03:00:00+00']);
    assert.equal(sent.length, 1);
    for (const [bad, message] of [
      [{ component: 'postgres', backupId: 'latest', target: 'x', to: '2026-12-04 03:00:00+00' }, /need "base": true/],
      [{ component: 'postgres', backupId: 'latest', target: 'x', base: true, to: '2026-12-04 03:00:00+00', toName: 'before_migration' }, /one of to, toName, toLsn/],
      [{ component: 'redis', backupId: 'latest', target: 'redis://x:6379', base: true }, /point-in-time restores are for postgres/],
    ] as const) {
      await assert.rejects(startRestore(bad, 'r', { ecs, env: ENV }), message);
    }
    assert.equal(sent.length, 1, 'no task for a refused request');
  });

  it('fails the invocation when ECS reports a failure', async () => {
    const { ecs } = mockedEcs({ failures: [{ reason: 'RESOURCE:MEMORY', detail: 'no capacity' }] });
    await assert.rejects(startRestore({ component: 'postgres', backupId: 'latest', target: 'x' }, 'r', { ecs, env: ENV }), /ECS did not start the restore task: RESOURCE:MEMORY \(no capacity\)/);
  });

  it('reports every missing environment setting at once', () => {
    const r = restoreEnvironmentSchema.safeParse({ OPS_CLUSTER_ARN: 'arn:x' });
    assert.equal(r.success, false);
    assert.equal(r.error?.issues.length, 6);
  });
});

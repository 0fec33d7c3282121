import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { remoteRunCommand, remoteStatusCommand, type RemoteDeps } from '../../src/cli/commands/remote-commands.js';
import { describeStack } from '../../src/remote/stack.js';

const OUTPUTS: Record<string, string> = {
  PartitionsFunction: 'stack-Partitions',
  VerifyFunction: 'stack-Verify',
  RestoreFunction: 'stack-Restore',
  StatusFunction: 'stack-Status',
  ClusterArn: 'arn:aws:ecs:eu-central-1:1:cluster/jobs',
  JobTaskDefinitions: JSON.stringify({
    'backup-postgres:callcenter': 'arn:aws:ecs:eu-central-1:1:task-definition/stack-BackupPostgres-callcenter:4',
    'backup-redis:sessions': 'arn:aws:ecs:eu-central-1:1:task-definition/stack-BackupRedis-sessions:4',
    'drill:callcenter': 'arn:aws:ecs:eu-central-1:1:task-definition/stack-DrillPostgres-callcenter:4',
    prune: 'arn:aws:ecs:eu-central-1:1:task-definition/stack-Prune:4',
    restore: 'arn:aws:ecs:eu-central-1:1:task-definition/stack-Restore:4',
    verify: 'arn:aws:ecs:eu-central-1:1:task-definition/stack-Verify:4',
  }),
  JobSubnets: 'subnet-a,subnet-b',
  JobSecurityGroups: 'sg-jobs',
};

type Sent = { name: string; input: any };

/**
 * CloudFormation, Lambda and ECS control planes have no local equivalent: stand-ins
 * that answer as they do and record every call.
 */
function fakeAws(options: { exitCode?: number; functionError?: boolean; statusPayload?: unknown; outputs?: Record<string, string> } = {}) {
  const sent: Sent[] = [];
  const lines: string[] = [];
  let polls = 0;
  const record = (name: string, input: any) => sent.push({ name, input });
  const deps: RemoteDeps = {
    cfn: { send: async (c: any) => (record(c.constructor.name, c.input), { Stacks: [{ Outputs: Object.entries(options.outputs ?? OUTPUTS).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })) }] }) } as never,
    lambda: {
      send: async (c: any) => {
        record(c.constructor.name, { ...c.input, Payload: JSON.parse(Buffer.from(c.input.Payload).toString()) });
        if (options.functionError) return { FunctionError: 'Unhandled', Payload: Buffer.from(JSON.stringify({ errorType: 'VerificationFailedError', errorMessage: 'verification failed: postgres/callcenter: level 1 sha256 mismatch' })) };
        return { Payload: Buffer.from(JSON.stringify(options.statusPayload ?? { results: [{ ok: true }] })) };
      },
    } as never,
    ecs: {
      send: async (c: any) => {
        record(c.constructor.name, c.input);
        if (c.constructor.name === 'RunTaskCommand') return { tasks: [{ taskArn: 'arn:aws:ecs:eu-central-1:1:task/jobs/abc123', lastStatus: 'PROVISIONING' }] };
        polls += 1;
        const lastStatus = polls === 1 ? 'RUNNING' : 'STOPPED';
        return { tasks: [{ lastStatus, containers: [{ exitCode: lastStatus === 'STOPPED' ? (options.exitCode ?? 0) : undefined }], stoppedReason: lastStatus === 'STOPPED' ? 'Essential container in task exited' : undefined }] };
      },
    } as never,
    onStatus: (l) => lines.push(l),
    pollMs: 1,
  };
  return { deps, sent, lines };
}

describe('remote mode (CloudFormation, Lambda and ECS mocked: no local equivalent)', () => {
  it('reads the stack outputs; a missing output names itself and what to do', async () => {
    const { deps } = fakeAws();
    const stack = await describeStack('stack', deps.cfn);
    assert.equal(stack.tasks['prune'], 'arn:aws:ecs:eu-central-1:1:task-definition/stack-Prune:4');
    assert.deepEqual(stack.subnets, ['subnet-a', 'subnet-b']);
    const { JobSubnets: _, ...partial } = OUTPUTS;
    await assert.rejects(describeStack('stack', fakeAws({ outputs: partial }).deps.cfn), /stack stack has no output JobSubnets: deploy this version of the stack/);
  });

  it('run backup-postgres --remote: RunTask on its task definition in the jobs subnets, waits, reports each status, exit 0', async () => {
    const { deps, sent, lines } = fakeAws();
    const out = await remoteRunCommand('stack', 'backup-postgres', deps, { wait: true });
    assert.equal(out.exitCode, 0);
    const run = sent.find((s) => s.name === 'RunTaskCommand')!;
    assert.equal(run.input.taskDefinition, 'arn:aws:ecs:eu-central-1:1:task-definition/stack-BackupPostgres-callcenter:4');
    assert.deepEqual(run.input.networkConfiguration.awsvpcConfiguration, { subnets: ['subnet-a', 'subnet-b'], securityGroups: ['sg-jobs'], assignPublicIp: 'DISABLED' });
    assert.deepEqual(lines, ['backup-postgres:callcenter: PROVISIONING', 'backup-postgres:callcenter: RUNNING', 'backup-postgres:callcenter: STOPPED']);
    assert.match(out.text, /exit 0.*log stream ops\/opsctl\/abc123/);
  });

  it("a task's exit code is the command's: 2 stays 2; --no-wait returns at once", async () => {
    const failed = await remoteRunCommand('stack', 'prune', fakeAws({ exitCode: 2 }).deps, { wait: true });
    assert.equal(failed.exitCode, 2);
    const { deps, sent } = fakeAws();
    const started = await remoteRunCommand('stack', 'drill', deps, { wait: false });
    assert.equal(started.exitCode, 0);
    assert.ok(!sent.some((s) => s.name === 'DescribeTasksCommand'), 'no waiting');
  });

  it('run verify --remote invokes the verify function per component; a failed verification exits 2 with its message', async () => {
    const ok = fakeAws();
    assert.equal((await remoteRunCommand('stack', 'verify', ok.deps, { wait: true, name: 'callcenter' })).exitCode, 0);
    assert.deepEqual(ok.sent.filter((s) => s.name === 'InvokeCommand').map((s) => [s.input.FunctionName, s.input.Payload]), [
      ['stack-Verify', { component: 'postgres', name: 'callcenter' }],
      ['stack-Verify', { component: 'redis', name: 'callcenter' }],
    ]);
    const bad = await remoteRunCommand('stack', 'verify', fakeAws({ functionError: true }).deps, { wait: true });
    assert.equal(bad.exitCode, 2);
    assert.match(bad.text, /VerificationFailedError: verification failed: postgres\/callcenter: level 1 sha256 mismatch/);
  });

  it('bad requests are usage errors naming what exists', async () => {
    await assert.rejects(remoteRunCommand('stack', 'nightly', fakeAws().deps, { wait: true }), (e: any) => e.exitCode === 64 && /each job has its own schedule/.test(e.message));
    await assert.rejects(remoteRunCommand('stack', 'backup-knowledge', fakeAws().deps, { wait: true }), (e: any) => e.exitCode === 64 && /it has: backup-postgres:callcenter, backup-redis:sessions, drill:callcenter, prune, restore, verify/.test(e.message));
  });

  it('status --remote shows the deployed report with the same exit codes', async () => {
    const report = { state: 'DEGRADED', reasons: ['redis sessions unreachable: timeout'], at: '2026-11-22T10:00:00Z', backups: [], partitions: [], services: { postgres: [], redis: [] } };
    const { deps, sent } = fakeAws({ statusPayload: report });
    const out = await remoteStatusCommand('stack', deps);
    assert.equal(out.exitCode, 1);
    assert.match(out.text, /status: DEGRADED\n {2}- redis sessions unreachable: timeout/);
    assert.equal(sent.find((s) => s.name === 'InvokeCommand')!.input.FunctionName, 'stack-Status');
  });
});

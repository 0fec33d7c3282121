import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Logger } from '@aws-lambda-powertools/logger';
import { status } from '../../lambdas/status/handler.js';
import { fileConfigSource } from '../../src/config/source.js';
import { silentLog } from '../../src/log.js';
import type { AwsClients } from '../../src/status/aws-status.js';
import type { StatusReport } from '../../src/status/report.js';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { createSeedDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

/** Scheduler, ECS and CloudWatch control planes have no local equivalent: stand-ins answering like them. */
function fakeAws(options: { disabled?: string; failedTask?: boolean; alarm?: string; denyAlarms?: boolean }): { clients: AwsClients; calls: string[] } {
  const calls: string[] = [];
  const named = (fn: (name: string, input: any) => unknown) => ({ send: async (c: { constructor: { name: string }; input: unknown }) => (calls.push(c.constructor.name), fn(c.constructor.name, c.input)) });
  const clients: AwsClients = {
    scheduler: named(() => ({ Schedules: [{ Name: 'backup-postgres', State: 'ENABLED' }, { Name: 'prune', State: options.disabled === 'prune' ? 'DISABLED' : 'ENABLED' }] })) as never,
    ecs: named((name, input) =>
      name === 'ListTasksCommand'
        ? { taskArns: input.desiredStatus === 'STOPPED' ? ['arn:aws:ecs:eu-central-1:1:task/c/old', 'arn:aws:ecs:eu-central-1:1:task/c/new'] : [] }
        : {
            tasks: [
              { taskArn: 'old', taskDefinitionArn: 'arn:aws:ecs:eu-central-1:1:task-definition/stack-BackupPostgres-callcenter:3', lastStatus: 'STOPPED', startedAt: new Date('2026-11-21T04:00:00Z'), containers: [{ exitCode: 0 }] },
              { taskArn: 'new', taskDefinitionArn: 'arn:aws:ecs:eu-central-1:1:task-definition/stack-BackupPostgres-callcenter:3', lastStatus: 'STOPPED', startedAt: new Date('2026-11-22T04:00:00Z'), stoppedReason: options.failedTask ? 'Essential container in task exited' : undefined, containers: [{ exitCode: options.failedTask ? 2 : 0 }] },
            ],
          },
    ) as never,
    cloudwatch: named(() => {
      if (options.denyAlarms) throw Object.assign(new Error('User is not authorized to perform: cloudwatch:DescribeAlarms'), { name: 'AccessDenied' });
      return { MetricAlarms: options.alarm ? [{ AlarmName: options.alarm, StateReason: 'Threshold Crossed', StateUpdatedTimestamp: new Date() }] : [] };
    }) as never,
  };
  return { clients, calls };
}

describe('status Lambda (real PostgreSQL, Redis and repository; AWS control planes mocked)', () => {
  let db: TestDatabase;
  let redis: TestRedis;
  let work: string;
  let cfg: string;
  const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
  const env = { OPS_STACK_NAME: 'stack', OPS_SCHEDULE_GROUP: 'stack', OPS_CLUSTER_ARN: 'arn:aws:ecs:eu-central-1:1:cluster/c', OPS_RUNBOOK_BASE_URL: 'https://example.com/runbooks/' };

  before(async () => {
    [db, redis, work] = await Promise.all([createSeedDatabase(200), startRedis(), tempDir()]);
    cfg = await writeConfig(work, { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'callcenter', url: db.url }], redis: [{ name: 'sessions', url: redis.url, mode: 'logical' }] });
    for (const args of [['backup', 'postgres'], ['verify', 'postgres'], ['backup', 'redis'], ['verify', 'redis']]) {
      const r = await runCli(['--config', cfg, ...args]);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => Promise.all([db.drop(), redis.stop(), rm(work, { recursive: true, force: true })]));

  const invoke = async (event: unknown, aws: ReturnType<typeof fakeAws>) => status(event, { source: fileConfigSource(cfg, silentLog), logger, env: { ...env }, aws: aws.clients });

  it('everything fine: OK, with services and the AWS part', async () => {
    const aws = fakeAws({});
    const report = (await invoke({}, aws)) as StatusReport;
    assert.equal(report.state, 'OK', report.reasons.join('; '));
    assert.equal(report.services.postgres[0]!.reachable, true);
    assert.ok(report.services.postgres[0]!.databaseBytes! > 0);
    assert.match(report.services.redis[0]!.version!, /^\d+\.\d+/);
    assert.deepEqual(report.aws!.tasks.map((t) => [t.family, t.exitCode]), [['stack-BackupPostgres-callcenter', 0]], 'the newest run of each job');
    assert.ok(aws.calls.includes('DescribeAlarmsCommand') && aws.calls.includes('ListSchedulesCommand'));
  });

  it('the 15-minute schedule ({ scope: "freshness" }) checks freshness only: no service probes, no AWS calls', async () => {
    const aws = fakeAws({ alarm: 'stack-BackupFailed-postgres-callcenter' });
    const report = (await invoke({ scope: 'freshness' }, aws)) as StatusReport;
    assert.deepEqual(report.backups.map((b) => [b.component, b.state]), [['postgres', 'ok'], ['redis', 'ok']]);
    assert.equal(report.services, undefined);
    assert.deepEqual(aws.calls, []);
  });

  it('a disabled schedule, a task that exited non-zero and a firing alarm: DEGRADED, each named', async () => {
    const report = (await invoke({}, fakeAws({ disabled: 'prune', failedTask: true, alarm: 'stack-BackupFailed-postgres-callcenter' }))) as StatusReport;
    assert.equal(report.state, 'DEGRADED');
    const reasons = report.reasons.join('\n');
    assert.match(reasons, /schedule prune is DISABLED/);
    assert.match(reasons, /task stack-BackupPostgres-callcenter STOPPED exit 2/);
    assert.match(reasons, /alarm stack-BackupFailed-postgres-callcenter firing/);
  });

  it('a refused AWS call is reported, not fatal', async () => {
    const report = (await invoke({}, fakeAws({ denyAlarms: true }))) as StatusReport;
    assert.equal(report.state, 'DEGRADED');
    assert.match(report.aws!.errors[0]!, /^alarms: User is not authorized/);
    assert.equal(report.aws!.schedules.length, 2);
  });

  it('as a dashboard custom widget it returns the HTML page, runbook links included', async () => {
    await redis.stop();
    const html = (await invoke({ widgetContext: { dashboardName: 'stack' } }, fakeAws({}))) as string;
    assert.equal(typeof html, 'string');
    assert.match(html, /id="state" style="background:#f9ab00">DEGRADED</);
    assert.match(html, /redis\/sessions/);
    assert.match(html, /href="https:\/\/example.com\/runbooks\/"/);
    assert.doesNotMatch(html, /<script/i);
  });
});

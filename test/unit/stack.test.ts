import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { buildOpsApp, EXAMPLE_STAGE } from '../../cdk/app.js';
import { StageConfigError } from '../../cdk/errors.js';
import { ALERTS } from '../../src/metrics/alerts.js';
import { SEED_DEFAULTS } from '../../src/config/defaults.js';
import { ROOT, tempDir } from '../helpers/cli.js';
import { rm } from 'node:fs/promises';

/** Alerts of point-in-time recovery: only for databases with postgres[].pitr.enabled. */
const PITR_ALERTS = ['WalArchiveStale', 'WalArchiveGap', 'WalPushFailed', 'BaseBackupStale', 'WalBacklogHigh', 'WalDiskFilling'];
/** Only where postgres[].pitr.receive.enabled: checked on the self-managed stage with streaming on. */
const RECEIVE_ALERTS = ['WalReceiverDown', 'WalReceiveLag', 'WalSlotRetained'];

type Resource = { Type: string; Properties: Record<string, unknown> };

const exampleStage = () => JSON.parse(readFileSync(path.join(ROOT, EXAMPLE_STAGE), 'utf8')) as Record<string, unknown>;
const exampleOps = () => JSON.parse(readFileSync(path.join(ROOT, 'cdk/stages/example.ops.config.json'), 'utf8')) as Record<string, unknown>;

/** A stage + ops config pair in a temp dir, each derived from the example by `edit`. */
function writeStage(dir: string, name: string, edit: { stage?: (s: any) => void; ops?: (o: any) => void; account?: string } = {}): string {
  const ops = exampleOps();
  edit.ops?.(ops);
  const stage = exampleStage();
  stage.opsConfig = `${name}.ops.json`;
  edit.stage?.(stage);
  const text = (o: unknown) => (edit.account ? JSON.stringify(o).replaceAll('123456789012', edit.account) : JSON.stringify(o));
  writeFileSync(path.join(dir, `${name}.ops.json`), text(ops));
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, text(stage));
  return file;
}

/** A stage derived from the example by `edit`, synthesized (cdk-nag unless `nag` is false); its files removed after. */
async function synthStage(name: string, edit: Parameters<typeof writeStage>[2], nag = true): Promise<{ template: Template }> {
  const dir = await tempDir(`ops-stage-${name}-`);
  try {
    const { app, stack } = buildOpsApp(writeStage(dir, name, edit), { outdir: path.join(dir, 'out'), nag });
    app.synth();
    return { template: Template.fromStack(stack) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('CDK stack (example stage, synthesized offline with cdk-nag)', () => {
  let dir: string;
  let template: Template;
  let resources: Record<string, Resource>;
  let outdir: string;
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  before(async () => {
    dir = await tempDir('ops-stack-');
    outdir = path.join(dir, 'cdk.out');
    const { app, stack } = buildOpsApp(path.join(ROOT, EXAMPLE_STAGE), { outdir });
    app.synth(); // throws "Validation failed" on any unacknowledged cdk-nag finding
    template = Template.fromStack(stack);
    resources = template.toJSON().Resources as Record<string, Resource>;
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('backup bucket: KMS, versioned, never public, TLS only, access-logged, lifecycle that never expires current backups, replicated', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() }, BucketKeyEnabled: true }] },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'backup-bucket/' }),
      ReplicationConfiguration: Match.objectLike({ Rules: [Match.objectLike({ Destination: Match.objectLike({ Bucket: 'arn:aws:s3:::ops-automation-example-replica-eu-west-1' }) })] }),
    });
    const [, bucket] = ofType('AWS::S3::Bucket').find(([, r]) => (r.Properties as any).ReplicationConfiguration)!;
    const rules = (bucket.Properties as any).LifecycleConfiguration.Rules as Record<string, unknown>[];
    assert.ok(rules.some((r) => (r.AbortIncompleteMultipartUpload as any)?.DaysAfterInitiation === 1), 'aborts incomplete multipart uploads');
    assert.deepEqual(
      rules.flatMap((r) => (r.Transitions as any[]) ?? []).map((t) => [t.StorageClass, t.TransitionInDays]),
      [['STANDARD_IA', 30], ['GLACIER_IR', 90]],
    );
    assert.ok(!rules.some((r) => 'ExpirationInDays' in r), 'current backups never expire by age: retention is the prune job');
    const policies = ofType('AWS::S3::BucketPolicy').map(([, r]) => JSON.stringify(r.Properties));
    assert.ok(policies.some((p) => p.includes('"aws:SecureTransport":"false"')), 'TLS enforced');
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  it('one Fargate task definition per job, each running one opsctl command, with secrets injected and EFS mounted read-only for backup, read-write for restore', () => {
    template.resourceCountIs('AWS::ECS::Cluster', 1);
    const defs = ofType('AWS::ECS::TaskDefinition').map(([, r]) => (r.Properties as any).ContainerDefinitions[0]);
    const commands = defs.map((c) => c.Command.join(' ')).sort();
    assert.deepEqual(commands, [
      '--help'.replace('--help', '--json --help'),
      '--json backup knowledge --name knowledge_base',
      '--json backup postgres --name callcenter',
      '--json backup redis --name sessions',
      '--json drill all',
      '--json drill knowledge --name knowledge_base',
      '--json drill postgres --name callcenter',
      '--json drill redis --name sessions',
      '--json prune',
      '--json verify postgres latest',
    ].sort());
    const byCommand = (cmd: string) => defs.find((c) => c.Command.join(' ') === cmd)!;
    const secretNames = (c: any) => (c.Secrets ?? []).map((s: any) => s.Name).sort();
    assert.deepEqual(secretNames(byCommand('--json backup postgres --name callcenter')), ['OPS_CONFIG_JSON', 'OPS_PG_PASSWORD_CALLCENTER']);
    assert.deepEqual(secretNames(byCommand('--json backup redis --name sessions')), ['OPS_CONFIG_JSON', 'OPS_REDIS_PASSWORD_SESSIONS']);
    assert.deepEqual(byCommand('--json backup knowledge --name knowledge_base').MountPoints, [{ ContainerPath: '/mnt/knowledge/knowledge_base', ReadOnly: true, SourceVolume: 'knowledge-knowledge_base' }]);
    assert.deepEqual(byCommand('--json --help').MountPoints, [{ ContainerPath: '/mnt/knowledge/knowledge_base', ReadOnly: false, SourceVolume: 'knowledge-knowledge_base' }]);
    for (const c of defs) {
      assert.equal(c.LogConfiguration.LogDriver, 'awslogs');
      assert.ok(!JSON.stringify(c.Environment ?? []).match(/password|secret/i), 'no secret in a container environment');
    }
    template.hasResourceProperties('AWS::ECS::TaskDefinition', { Volumes: [Match.objectLike({ EFSVolumeConfiguration: Match.objectLike({ FilesystemId: 'fs-0a1b2c3d4e5f60718', TransitEncryption: 'ENABLED' }) })] });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', { RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' }, RequiresCompatibilities: ['FARGATE'] });
    for (const [, g] of ofType('AWS::Logs::LogGroup')) assert.equal((g.Properties as any).RetentionInDays, 90);
    // Kept with the bucket (retain is the example's default): cdk destroy must not take the logs that explain the backups.
    for (const [id, g] of ofType('AWS::Logs::LogGroup')) assert.equal((g as any).DeletionPolicy, 'Retain', id);
    // The bucket-notifications handler's group too (Lambda would create it without expiry).
    const notificationsFn = ofType('AWS::Lambda::Function').find(([id]) => id.startsWith('BucketNotificationsHandler'))![0];
    template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: { 'Fn::Join': ['', ['/aws/lambda/', { Ref: notificationsFn }]] }, RetentionInDays: 90 });
  });

  it('four Lambdas on the newest Node.js runtime, ARM64, own log groups; verify has the pg_restore layer; status has an IAM-authenticated URL', () => {
    const fns = ofType('AWS::Lambda::Function').filter(([id]) => /^(Partitions|Verify|Restore|Status)Function/.test(id));
    assert.equal(fns.length, 4);
    for (const [id, fn] of fns) {
      const p = fn.Properties as any;
      assert.equal(p.Runtime, 'nodejs24.x', id);
      assert.deepEqual(p.Architectures, ['arm64'], id);
      assert.ok(p.LoggingConfig?.LogGroup, `${id} has its own log group`);
    }
    template.hasResourceProperties('AWS::Lambda::Function', { Description: Match.stringLikeRegexp('^Verify'), Layers: ['arn:aws:lambda:eu-central-1:123456789012:layer:ops-pg-restore:1'], Timeout: 900 });
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'AWS_IAM' });
    template.hasResourceProperties('AWS::SSM::Parameter', { Name: '/ops-automation-example/ops-config', Type: 'String' });
  });

  it("schedules: every job at the seeds' expression in the configured time zone, with retries and a dead-letter queue", () => {
    const schedules = ofType('AWS::Scheduler::Schedule').map(([, r]) => r.Properties as any);
    const found = Object.fromEntries(schedules.map((s) => [s.Description, [s.ScheduleExpression, s.ScheduleExpressionTimezone]]));
    const S = SEED_DEFAULTS.schedules;
    assert.deepEqual(found, {
      'pg_dump of callcenter to the repository': [S.postgresBackup, 'UTC'],
      'verify the newest backup of callcenter': [S.verify, 'UTC'],
      'restore drill of callcenter': [S.drill, 'UTC'],
      'partition maintenance of callcenter': [S.partitions, 'UTC'],
      'Redis backup of sessions': [S.redisBackup, 'UTC'],
      'knowledge-base backup of knowledge_base': [S.knowledgeBackup, 'UTC'],
      'restore drill of Redis sessions into a scratch redis-server': [S.redisDrill, 'UTC'],
      'restore drill of knowledge base knowledge_base into a scratch directory': [S.knowledgeDrill, 'UTC'],
      'quarterly disaster-recovery drill: every component, RTO and RPO': [S.drillAll, 'UTC'],
      'retention: delete expired backups, never the newest verified ones': ['cron(0 6 * * ? *)', 'UTC'],
      'freshness check: age gauges for the stale alarms': [S.status, 'UTC'],
    });
    const freshness = schedules.find((s) => s.Description === 'freshness check: age gauges for the stale alarms');
    assert.deepEqual(JSON.parse(freshness.Target.Input), { scope: 'freshness' }, 'the checker computes freshness only');
    for (const s of schedules) {
      assert.deepEqual(s.Target.RetryPolicy, { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 2 });
      assert.ok(s.Target.DeadLetterConfig?.Arn, 'dead-letter queue');
    }
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({ source: ['aws.s3'], 'detail-type': ['Object Created'], detail: Match.objectLike({ object: { key: [{ wildcard: 'ops/*/manifest.json' }] } }) }),
    });
  });

  it('alarms: every alert of src/metrics/alerts.ts with the shared thresholds and an existing runbook; staleness treats missing data as breaching', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, r]) => r.Properties as any);
    const named = (alert: string) => alarms.filter((a) => a.AlarmName.startsWith(`ops-automation-example-${alert}-`));
    // The example's database is RDS (native PITR): the WAL-archive alarms are checked on a self-managed stage below.
    for (const alert of ALERTS.filter((a) => !PITR_ALERTS.includes(a.name) && !RECEIVE_ALERTS.includes(a.name))) assert.ok(named(alert.name).length > 0, `an alarm for ${alert.name}`);
    const A = SEED_DEFAULTS.alerts;
    const expectations: [string, number, string][] = [
      ['PostgresBackupStale', A.postgresBackupStaleHours * 3600, 'backup_age_seconds'],
      ['RedisBackupStale', A.redisBackupStaleHours * 3600, 'backup_age_seconds'],
      ['KnowledgeBackupStale', A.knowledgeBackupStaleDays * 86_400, 'backup_age_seconds'],
      ['PartitionCreationStale', A.partitionCreationStaleDays * 86_400, 'partition_age_seconds'],
    ];
    for (const [alert, threshold, metric] of expectations) {
      const [alarm] = named(alert);
      assert.equal(alarm.Threshold, threshold, alert);
      assert.equal(alarm.MetricName, metric, alert);
      assert.equal(alarm.TreatMissingData, 'breaching', `${alert}: a dead checker must page`);
      assert.ok(alarm.Period * alarm.EvaluationPeriods <= 604_800, 'CloudWatch evaluates at most 7 days');
    }
    assert.equal(named('PartitionCoverageLow').length, 3, 'one per partitioned table');
    assert.equal(named('FreshnessCheckerDead')[0].TreatMissingData, 'breaching');
    for (const extra of ['ScheduledTaskFailed', 'ScheduleDeliveryFailed', 'FunctionErrors']) assert.ok(named(extra).length > 0, extra);
    for (const a of alarms) {
      const runbook = /Runbook: \S+\/doc\/runbooks\/([a-z-]+\.md)$/.exec(a.AlarmDescription)?.[1];
      assert.ok(runbook && existsSync(path.join(ROOT, 'doc', 'runbooks', runbook)), `${a.AlarmName} links an existing runbook (${a.AlarmDescription})`);
      assert.ok(a.AlarmActions?.length >= 1, `${a.AlarmName} notifies SNS`);
    }
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('least privilege: no action wildcard on data, RunTask and PassRole scoped to the restore/drill task definitions', () => {
    const statements = ofType('AWS::IAM::Policy').flatMap(([id, r]) => ((r.Properties as any).PolicyDocument.Statement as any[]).map((s) => ({ id, ...s })));
    const actions = (s: any) => [s.Action].flat();
    for (const s of statements) {
      for (const a of actions(s)) {
        assert.notEqual(a, '*', `${s.id}: Action *`);
        if (!s.id.startsWith('BackupBucketReplicationRole')) assert.ok(!/^(s3|kms|secretsmanager|ssm):.*\*/.test(a), `${s.id}: wildcard action ${a} on data`);
      }
    }
    const runTask = statements.filter((s) => actions(s).includes('ecs:RunTask') && s.id.startsWith('RestoreRole'));
    assert.equal(runTask.length, 1);
    assert.equal([runTask[0].Resource].flat().length, 5, 'restore + the drill task definitions (postgres, redis, knowledge, all) only');
    assert.ok(runTask[0].Condition?.ArnEquals?.['ecs:cluster'], 'only in our cluster');
    const passRole = statements.find((s) => actions(s).includes('iam:PassRole') && s.id.startsWith('RestoreRole'));
    assert.equal(passRole.Condition.StringEquals['iam:PassedToService'], 'ecs-tasks.amazonaws.com');
    assert.equal([passRole.Resource].flat().length, 10, 'task + execution role of those five task definitions');
    const backupPolicy = statements.filter((s) => s.id.startsWith('JobsBackupRedissessionsTaskRole'));
    const resources = JSON.stringify(backupPolicy.map((s) => s.Resource));
    assert.match(resources, /\/ops\/redis\/sessions\/\*/);
    assert.doesNotMatch(resources, /\/ops\/postgres/, 'a Redis backup cannot touch PostgreSQL backups');
  });

  it('outputs everything `opsctl --remote` reads, and every job has its task definition', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    for (const key of ['PartitionsFunction', 'VerifyFunction', 'RestoreFunction', 'StatusFunction', 'ClusterArn', 'JobTaskDefinitions', 'JobSubnets', 'JobSecurityGroups', 'StatusUrl', 'ConfigParameter']) assert.ok(outputs[key], key);
    const jobs = JSON.stringify(outputs.JobTaskDefinitions!.Value);
    for (const job of ['backup-postgres:callcenter', 'backup-redis:sessions', 'backup-knowledge:knowledge_base', 'drill:callcenter', 'drill-redis:sessions', 'drill-knowledge:knowledge_base', 'drill-all', 'prune', 'verify', 'restore']) assert.ok(jobs.includes(`\\"${job}\\"`), `${job} in ${jobs.slice(0, 200)}`);
  });

  // The SDK the code was tested with is bundled (the runtime's copy has no lib-storage or
  // credential-provider-node, and its version moves): 0.8-1.6 MB, recorded in doc/deploy.md.
  it('each Lambda bundle is minified ESM with its own AWS SDK, under 2 MB', () => {
    const assets = readdirSync(outdir).filter((d) => d.startsWith('asset.') && existsSync(path.join(outdir, d, 'index.mjs')));
    assert.equal(assets.length, 4);
    for (const a of assets) {
      const text = readFileSync(path.join(outdir, a, 'index.mjs'), 'utf8');
      assert.ok(text.length < 2_000_000, `${a}: ${text.length} bytes`);
      assert.doesNotMatch(text, /from\s*["']@aws-sdk\//, `${a} imports no @aws-sdk package from the runtime`);
    }
  });
});

describe('CDK stack: acknowledged findings only', () => {
  it('a new wildcard permission fails the synth (cdk-nag cannot be silently bypassed)', async () => {
    const dir = await tempDir('ops-stack-nag-');
    try {
      const { app, stack } = buildOpsApp(path.join(ROOT, EXAMPLE_STAGE), { outdir: dir });
      stack.functions.status.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:*'], resources: ['*'] }));
      assert.throws(() => app.synth(), /Validation failed/);
      const report = readFileSync(path.join(dir, 'validation-report.json'), 'utf8');
      assert.match(report, /AwsSolutions-IAM5\[Action::s3:\*\]/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('CDK stage configuration', () => {
  it('a bad stage and ops config report every problem at once, naming each path', async () => {
    const dir = await tempDir('ops-stage-');
    try {
      const file = writeStage(dir, 'bad', {
        stage: (s) => {
          s.region = 'mars-1';
          s.vpc = { mode: 'import', vpcId: 'vpc-1' };
          delete s.pgRestoreLayer;
          s.logRetentionDays = 10;
          s.knowledgeFileSystems = {};
        },
        ops: (o) => {
          o.postgres[0].url = 'postgresql://postgres@127.0.0.1:5432/ops_demo';
          delete o.postgres[0].passwordSecretArn;
          o.redis[0].backup.schedule = 'every day';
        },
      });
      const error = (() => {
        try {
          buildOpsApp(file, { nag: false });
        } catch (e) {
          return e;
        }
        assert.fail('expected a StageConfigError');
      })();
      assert.ok(error instanceof StageConfigError);
      const paths = error.problems.map((p) => p.path);
      for (const expected of ['region', 'vpc.vpcId', 'vpc.availabilityZones', 'pgRestoreLayer', 'opsConfig → redis.0.backup.schedule']) assert.ok(paths.includes(expected), `${expected} in ${paths.join(', ')}`);
      // Cross-file rules run once both files parse on their own.
      const second = writeStage(dir, 'cross', {
        stage: (s) => {
          s.logRetentionDays = 10;
          s.knowledgeFileSystems = {};
        },
        ops: (o) => {
          o.postgres[0].url = 'postgresql://postgres@127.0.0.1:5432/ops_demo';
          delete o.postgres[0].passwordSecretArn;
        },
      });
      assert.throws(
        () => buildOpsApp(second, { nag: false }),
        (e: unknown) => {
          const p = (e as StageConfigError).problems.map((x) => x.path);
          assert.deepEqual(p.sort(), ['knowledgeFileSystems.knowledge_base', 'logRetentionDays', 'opsConfig → postgres.0.passwordSecretArn', 'opsConfig → postgres.0.url'].sort());
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('two databases and two Redis instances: each task carries each target\'s own secret variable, the status function may read all four', async () => {
    const secret = (n: string) => `arn:aws:secretsmanager:eu-central-1:123456789012:secret:${n}-AbCdEf`;
    const { template: t } = await synthStage('two', {
      ops: (o) => {
        o.postgres[0].passwordSecretArn = secret('callcenter');
        o.postgres.push({ ...o.postgres[0], name: 'billing', url: 'postgresql://ops_backup@billing.example:5432/billing', passwordSecretArn: secret('billing'), partitions: undefined });
        o.redis[0].passwordSecretArn = secret('sessions');
        o.redis.push({ ...o.redis[0], name: 'queue', url: 'redis://queue.example:6379', passwordSecretArn: secret('queue') });
      },
    });
    const defs = Object.values(t.findResources('AWS::ECS::TaskDefinition')).map((r: any) => r.Properties.ContainerDefinitions[0]);
    const restore = defs.find((c: any) => c.Command.join(' ') === '--json --help');
    const names = (restore.Secrets as any[]).map((x) => x.Name).sort();
    assert.deepEqual(names, ['OPS_CONFIG_JSON', 'OPS_PG_PASSWORD_BILLING', 'OPS_PG_PASSWORD_CALLCENTER', 'OPS_REDIS_PASSWORD_QUEUE', 'OPS_REDIS_PASSWORD_SESSIONS']);
    assert.equal(new Set(names).size, names.length, 'no variable twice');
    const billing = (restore.Secrets as any[]).find((x) => x.Name === 'OPS_PG_PASSWORD_BILLING');
    assert.match(JSON.stringify(billing.ValueFrom), /billing/, 'billing\'s variable holds billing\'s secret');
    const policies = JSON.stringify(Object.entries(t.findResources('AWS::IAM::Policy')).filter(([id]) => id.startsWith('StatusRole')));
    for (const n of ['callcenter', 'billing', 'sessions', 'queue']) assert.ok(policies.includes(secret(n)), `status may read ${n}'s secret`);
  });

  it('a self-managed database with PITR: base-backup and PITR-drill tasks on their schedules, the WAL alarms, and a managed policy for the host limited to its own WAL prefix', async () => {
    const { template: t } = await synthStage('pitr', {
      ops: (o) => {
        o.postgres[0].url = 'postgresql://ops_backup@db1.internal.example:5432/callcenter';
        o.postgres[0].pitr = { enabled: true, serverMajor: 17, receive: { enabled: true } };
      },
    });
    const commands = Object.values(t.findResources('AWS::ECS::TaskDefinition')).map((r: any) => r.Properties.ContainerDefinitions[0].Command.join(' '));
    assert.ok(commands.includes('--json backup postgres --base --name callcenter'));
    assert.ok(commands.includes('--json drill postgres --pitr --name callcenter'));
    const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((r: any) => r.Properties.AlarmName as string);
    for (const a of [...PITR_ALERTS, ...RECEIVE_ALERTS, 'DrillFailed-postgres-callcenter-pitr', 'DrillStale-postgres-callcenter-pitr']) assert.ok(alarms.some((n) => n.includes(`-${a}`)), `${a} in ${alarms.length} alarms`);
    // pg_wal on the host: the backlog against the configured limit, the fill horizon as metric math on free space and growth.
    const props = Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((r: any) => r.Properties);
    const backlog = props.find((p: any) => p.AlarmName.includes('-WalBacklogHigh-'));
    assert.equal(backlog.MetricName, 'wal_ready_bytes');
    assert.equal(backlog.Threshold, SEED_DEFAULTS.alerts.walBacklogMaxBytes);
    const filling = props.find((p: any) => p.AlarmName.includes('-WalDiskFilling-'));
    assert.equal(filling.Metrics.find((m: any) => m.Expression)?.Expression, `free - ${SEED_DEFAULTS.alerts.walDiskFillHours * 3600} * RATE(used)`);
    assert.deepEqual(filling.Metrics.filter((m: any) => m.MetricStat).map((m: any) => m.MetricStat.Metric.MetricName).sort(), ['pg_wal_bytes', 'pg_wal_fs_free_bytes']);
    assert.equal(filling.ComparisonOperator, 'LessThanThreshold');
    // wal receive: one service, one task at a time (the slot takes one reader), stopped with time to upload.
    const services = Object.values(t.findResources('AWS::ECS::Service')).map((r: any) => r.Properties);
    assert.equal(services.length, 1);
    assert.equal(services[0].DesiredCount, 1);
    assert.deepEqual([services[0].DeploymentConfiguration.MinimumHealthyPercent, services[0].DeploymentConfiguration.MaximumPercent], [0, 100]);
    assert.ok(commands.includes('--json wal receive --name callcenter --dir /tmp/ops-wal-receive'));
    const receiveDef = Object.values(t.findResources('AWS::ECS::TaskDefinition')).find((r: any) => r.Properties.ContainerDefinitions[0].Command.includes('receive')) as any;
    assert.equal(receiveDef.Properties.ContainerDefinitions[0].StopTimeout, 120);
    const schedules = Object.values(t.findResources('AWS::Scheduler::Schedule')).map((r: any) => r.Properties.Description as string);
    assert.ok(!schedules.some((d) => /receive/.test(d)), 'the receiver is a service, not a schedule');
    assert.ok(schedules.includes('base backup of callcenter for point-in-time recovery'));
    // The dashboard shows the archive's age and holes, the base backup's age and the PITR drill.
    const body = JSON.stringify(Object.values(t.findResources('AWS::CloudWatch::Dashboard'))[0]);
    for (const title of ['Newest archived WAL age (minutes)', 'WAL segments missing / archive_command failures', 'Newest base backup age (days)', 'Last passed PITR drill (days ago)']) assert.ok(body.includes(title), title);
    assert.ok(body.includes('wal_newest_segment_age_seconds'), 'the WAL age metric on the dashboard');
    assert.ok(schedules.includes('point-in-time recovery drill of callcenter'));
    const policy = Object.entries(t.findResources('AWS::IAM::ManagedPolicy')).find(([id]) => id.startsWith('WalArchivePolicy'))![1].Properties.PolicyDocument.Statement;
    const actions = (policy as any[]).flatMap((s) => [s.Action].flat());
    assert.deepEqual([...new Set(actions)].sort(), ['kms:Decrypt', 'kms:GenerateDataKey', 's3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject']);
    assert.match(JSON.stringify(policy), /ops\/wal\/callcenter\/\*/);
    assert.doesNotMatch(JSON.stringify(policy), /ops\/postgres/);
    // With wal receive on the host: delete, and only the chunks of its own WAL.
    const deletes = (policy as any[]).filter((s) => [s.Action].flat().includes('s3:DeleteObject'));
    assert.equal(deletes.length, 1);
    assert.match(JSON.stringify(deletes[0].Resource), /\/ops\/wal\/callcenter\/chunks\/\*"/);
    // archive_command and restore_command as postgresql.conf takes them: region, repository and name in the command.
    const outputs = t.toJSON().Outputs as Record<string, { Value: unknown }>;
    const flat = (v: unknown) => JSON.stringify(v).replace(/\{"Ref":"(\w+)"\}/g, '<$1>').replace(/[",\[\]]|\{"Fn::Join":|\}/g, '');
    assert.match(flat(outputs.ArchiveCommandcallcenter?.Value), /^AWS_REGION=eu-central-1 OPS_REPOSITORY_URL=s3:\/\/<BackupBucket\w+>\/ops opsctl --config \/etc\/opsctl\/ops\.config\.json wal push %p --name callcenter --resident$/);
    assert.match(flat(outputs.RestoreCommandcallcenter?.Value), /^AWS_REGION=eu-central-1 OPS_REPOSITORY_URL=s3:\/\/<BackupBucket\w+>\/ops opsctl --config \/etc\/opsctl\/ops\.config\.json wal fetch %f %p --name callcenter$/);
  });

  it('stage rules AWS would reject at deploy: Fargate sizes, name lengths, Object Lock replication, created VPC with database groups', async () => {
    const dir = await tempDir('ops-stage-rules-');
    try {
      const file = writeStage(dir, 'rules', {
        stage: (s) => {
          s.stackName = `ops-${'x'.repeat(70)}`;
          s.tasks = { backup: { cpu: 1024, memoryMiB: 1024 }, restore: { cpu: 256, memoryMiB: 4096 } };
          s.bucket = { ...s.bucket, objectLock: { mode: 'GOVERNANCE', days: 30 } };
          s.vpc = { mode: 'create', maxAzs: 2, natGateways: 1 };
        },
        ops: (o) => {
          o.postgres[0].url = 'postgresql://ops_backup@db1.internal.example:5432/callcenter';
          o.postgres[0].pitr = { enabled: true, serverMajor: 14 };
        },
      });
      assert.throws(
        () => buildOpsApp(file, { nag: false }),
        (e: unknown) => {
          const byPath = Object.fromEntries((e as StageConfigError).problems.map((p) => [p.path, p.message]));
          assert.match(byPath['tasks.backup.memoryMiB'] ?? '', /Fargate runs 1024 CPU units with 2048-8192 in steps of 1024 MiB, not 1024/);
          assert.match(byPath['tasks.restore.memoryMiB'] ?? '', /Fargate runs 256 CPU units with 512, 1024, 2048 MiB, not 4096/);
          assert.match(byPath.stackName ?? '', /at most 64 characters \(the schedule group/);
          assert.match(byPath['bucket.replication.destinationObjectLock'] ?? '', /only into a bucket with Object Lock/);
          assert.match(byPath['vpc.mode'] ?? '', /needs peering/);
          assert.match(byPath['knowledgeFileSystems.knowledge_base'] ?? '', /a created VPC cannot mount an EFS file system of another VPC/);
          assert.match(byPath['opsConfig → postgres.0.pitr.serverMajor'] ?? '', /PostgreSQL 14 is not in the job image \(servers 15, 16, 17\)/);
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('two stages with replication and Object Lock in one account: no fixed role name shared; the role reads retention and legal hold; replication metrics on and watched by ReplicationFailed', async () => {
    const replicated = (stackName: string) => ({
      stage: (s: any) => {
        s.stackName = stackName;
        s.bucket = {
          ...s.bucket,
          objectLock: { mode: 'GOVERNANCE', days: 30 },
          replication: { destinationBucketArn: 'arn:aws:s3:::ops-replica-eu', destinationKmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555', destinationObjectLock: true },
        };
      },
    });
    const a = (await synthStage('repl-a', replicated('ops-stage-a'))).template;
    const b = (await synthStage('repl-b', replicated('ops-stage-b'))).template;
    const fixedNames = (t: Template) => Object.values(t.findResources('AWS::IAM::Role')).map((r: any) => r.Properties.RoleName).filter((n: unknown) => typeof n === 'string');
    const shared = fixedNames(a).filter((n) => fixedNames(b).includes(n));
    assert.deepEqual(shared, [], 'a second stage would fail to create a role of the same name');
    assert.ok(!JSON.stringify(a.toJSON()).includes('"CDKReplicationRole"'));
    // The replication role's policy: Object Lock's retention and legal hold readable.
    const policies = Object.values(a.findResources('AWS::IAM::Policy')).map((p: any) => JSON.stringify(p.Properties.PolicyDocument));
    assert.ok(policies.some((p) => p.includes('s3:GetObjectRetention') && p.includes('s3:GetObjectLegalHold')), 'GetObjectRetention and GetObjectLegalHold granted');
    const bucket = Object.values(a.findResources('AWS::S3::Bucket')).find((r: any) => r.Properties.ReplicationConfiguration) as any;
    assert.equal(bucket.Properties.ReplicationConfiguration.Rules[0].Id, 'backups-second-copy');
    assert.equal(bucket.Properties.ReplicationConfiguration.Rules[0].Destination.Metrics.Status, 'Enabled');
    a.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'ops-stage-a-ReplicationFailed-bucket',
      MetricName: 'OperationsFailedReplication',
      Namespace: 'AWS/S3',
      Threshold: 0,
      AlarmDescription: Match.stringLikeRegexp('replication-failed\\.md'),
    });
  });

  it('a created VPC without NAT gateway: isolated subnets and an endpoint for every service the jobs call', async () => {
    const { template: t } = await synthStage('nonat', {
      stage: (s) => {
        s.vpc = { mode: 'create', maxAzs: 2, natGateways: 0 };
        s.postgresSecurityGroupIds = [];
        s.redisSecurityGroupIds = [];
        s.knowledgeFileSystems = {};
        delete s.account;
      },
      ops: (o) => (o.knowledge = []),
    });
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    const services = Object.values(t.findResources('AWS::EC2::VPCEndpoint')).map((r: any) => JSON.stringify(r.Properties.ServiceName));
    for (const svc of ['ecr.api', 'ecr.dkr', 'logs', 'secretsmanager', 'ssm', 'monitoring', 'ecs', 'scheduler', 'sts', 'aps-workspaces', 's3']) {
      assert.ok(services.some((x) => x.includes(`.${svc}`)), `an endpoint for ${svc}: ${services.join(' ')}`);
    }
  });

  it('an imported VPC with its route tables gets the S3 gateway endpoint', async () => {
    const { template } = await synthStage('rtb', { stage: (s) => (s.vpc.privateRouteTableIds = ['rtb-0a1b2c3d4e5f60718', 'rtb-0f1e2d3c4b5a69788']) }, false);
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway', RouteTableIds: ['rtb-0a1b2c3d4e5f60718', 'rtb-0f1e2d3c4b5a69788'] });
  });

  it('a stage without an account synthesizes offline, cdk-nag included (acknowledgements name the account as a token)', async () => {
    // The synth threw KeyMustResolveToString, then an unacknowledged wildcard account on the EFS grant.
    const { template } = await synthStage('noacct', { stage: (s) => delete s.account });
    assert.doesNotMatch(JSON.stringify(template.toJSON()), /elasticfilesystem:[a-z0-9-]+:\*:/, 'no wildcard account in an ARN');
  });

  it('the time zone, schedules and thresholds come from the ops config: a second stage is one file away', async () => {
    const dir = await tempDir('ops-stage-');
    try {
      const file = writeStage(dir, 'kyiv', {
        account: '210987654321',
        stage: (s) => {
          s.stackName = 'ops-automation-staging';
          s.account = '210987654321';
          s.region = 'eu-west-1';
          s.vpc = { mode: 'create', maxAzs: 2, natGateways: 1 };
          s.postgresSecurityGroupIds = [];
          s.redisSecurityGroupIds = [];
          s.knowledgeFileSystems = {};
          s.bucket = { objectLock: { mode: 'GOVERNANCE', days: 30 } };
        },
        ops: (o) => {
          o.knowledge = [];
          o.timezone = 'Europe/Kyiv';
          o.postgres[0].backup.schedule = 'cron(30 3 * * ? *)';
          o.alerts = { postgresBackupStaleHours: 30 };
        },
      });
      const { app, stack } = buildOpsApp(file, { outdir: path.join(dir, 'out') });
      app.synth();
      const t = Template.fromStack(stack);
      const schedules = Object.values(t.findResources('AWS::Scheduler::Schedule')).map((r: any) => r.Properties);
      assert.ok(schedules.filter((s) => s.ScheduleExpression.startsWith('cron')).every((s) => s.ScheduleExpressionTimezone === 'Europe/Kyiv'));
      assert.ok(schedules.some((s) => s.ScheduleExpression === 'cron(30 3 * * ? *)'));
      t.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'ops-automation-staging-PostgresBackupStale-postgres-callcenter', Threshold: 30 * 3600 });
      t.hasResourceProperties('AWS::S3::Bucket', { ObjectLockEnabled: true, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } } } });
      t.resourceCountIs('AWS::EC2::VPC', 1);
      t.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT' });
      assert.equal(stack.account, '210987654321');
      assert.doesNotMatch(JSON.stringify(t.toJSON()), /123456789012/, 'nothing of the example account leaks into another stage');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

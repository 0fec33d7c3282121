import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import { ECSClient } from '@aws-sdk/client-ecs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { Logger } from '@aws-lambda-powertools/logger';
import { SSMProvider } from '@aws-lambda-powertools/parameters/ssm';
import { configSourceFromEnv } from '../../lambdas/shared/runtime.js';
import { ensurePartitionsJob } from '../../src/jobs/partition-jobs.js';
import { applyTargetSecrets } from '../../lambdas/shared/runtime.js';
import { startRestore } from '../../lambdas/restore/handler.js';
import { restoreEnvironmentSchema } from '../../lambdas/restore/request.js';
import { buildOpsApp, EXAMPLE_STAGE } from '../../cdk/app.js';
import { parseConfig } from '../../src/config/load.js';
import { createJobContext, type JobContext } from '../../src/jobs/context.js';
import { backupKnowledgeJob } from '../../src/jobs/knowledge-jobs.js';
import { backupPostgresJob, drillPostgresJob, restorePostgresJob } from '../../src/jobs/postgres-jobs.js';
import { drillAllJob, drillKnowledgeJob, drillRedisJob } from '../../src/jobs/drill-jobs.js';
import { pruneJob } from '../../src/jobs/prune-job.js';
import { backupRedisJob } from '../../src/jobs/redis-jobs.js';
import { verifyKnowledgeJob, verifyPostgresJob, verifyRedisJob } from '../../src/jobs/verify-jobs.js';
import { checkFreshness } from '../../src/status/freshness.js';
import { silentLog } from '../../src/log.js';
import { S3Repository, createS3Client } from '../../src/repository/s3-repository.js';
import { recordCalls, type AwsCall } from '../helpers/aws-calls.js';
import { ResolvedTemplate, evaluate, requirementsOf, synthesizedStage, taskRoleOf, type Requirement, type TemplateJson } from '../helpers/iam.js';
import { ROOT, tempDir } from '../helpers/cli.js';
import { createSeedDatabase, dropDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { removeLocalS3, startLocalS3, type LocalS3 } from '../helpers/s3.js';

/**
 * Sufficiency, not shape: every AWS call each job really makes (recorded by an SDK
 * middleware while the job runs against s3rver and real PostgreSQL / Redis / files) is
 * judged against the synthesized template, identity and resource policies together, by
 * @cloud-copilot/iam-simulate. Control planes with no local equivalent (ECS RunTask,
 * Secrets Manager) are mocked at the SDK: the call is recorded and answered in-process.
 */
describe('IAM sufficiency: every runtime call allowed to the principal that makes it (example stage; ECS and Secrets Manager mocked)', () => {
  let t: ResolvedTemplate;
  let template: TemplateJson;
  let s3: LocalS3;
  let db: TestDatabase;
  let redis: TestRedis;
  let work: string;
  const callsByJob = new Map<string, { principal: string; calls: AwsCall[] }>();
  let bucketId = '';
  let keyId = '';

  const taskRole = (command: string): string => {
    const role = taskRoleOf(template, command);
    assert.ok(role, `a task definition runs "${command}"`);
    return role;
  };
  const functionRole = (prefix: string): string => {
    const [, fn] = Object.entries(template.Resources).find(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(prefix))!;
    return (fn.Properties!.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  };

  before(async () => {
    work = await tempDir('ops-iam-');
    ({ template, t, bucketId, keyId } = await synthesizedStage(path.join(ROOT, EXAMPLE_STAGE), path.join(work, 'cdk.out')));
    s3 = await startLocalS3(t.ref(bucketId));
    db = await createSeedDatabase(300, 'ops_test_iam');
    redis = await startRedis();
    await redis.client(0).set('session:1', 'x');
    const kb = path.join(work, 'kb');
    await mkdir(kb);
    await writeFile(path.join(kb, 'faq.md'), '# FAQ\n');
    // More than one 5 MiB part: the multipart path (create, parts, complete) is recorded too.
    await writeFile(path.join(kb, 'scan.bin'), randomBytes(7 << 20));

    const opsText = await readFile(path.join(ROOT, 'cdk/stages/example.ops.config.json'), 'utf8');
    const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, OPS_KNOWLEDGE_PATH: kb, OPS_REPOSITORY_URL: `s3://${t.ref(bucketId)}/ops` };
    const config = parseConfig(opsText, path.join(ROOT, 'cdk/stages/example.ops.config.json'), env);
    const job = async <R>(name: string, principal: string, run: (ctx: JobContext) => Promise<R>): Promise<R> => {
      const calls: AwsCall[] = [];
      callsByJob.set(name, { principal, calls });
      const repo = new S3Repository({ bucket: t.ref(bucketId), prefix: 'ops', partSizeMiB: 5, queueSize: 2, client: recordCalls(createS3Client(s3.env), calls) });
      return run(createJobContext(config, silentLog, { repo, env: { ...process.env, ...env } }));
    };

    const fnEnv = (prefix: string) => t.value(Object.entries(template.Resources).find(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(prefix))![1].Properties!.Environment.Variables) as Record<string, string>;
    const ok = (results: { ok: boolean; error?: string }[]) => assert.ok(results.every((r) => r.ok), JSON.stringify(results));
    ok(await job('backup postgres callcenter (task)', taskRole('--json backup postgres --name callcenter'), (ctx) => backupPostgresJob(ctx, 'callcenter')));
    ok(await job('backup redis sessions (task)', taskRole('--json backup redis --name sessions'), (ctx) => backupRedisJob(ctx, 'sessions')));
    ok(await job('backup knowledge knowledge_base (task)', taskRole('--json backup knowledge --name knowledge_base'), (ctx) => backupKnowledgeJob(ctx, 'knowledge_base')));
    ok(
      await job('verify (function)', functionRole('VerifyFunction'), async (ctx) => [
        ...(await verifyPostgresJob(ctx, 'callcenter')),
        ...(await verifyRedisJob(ctx, 'sessions')),
        ...(await verifyKnowledgeJob(ctx, 'knowledge_base')),
      ]),
    );
    ok(await job('verify postgres (task)', taskRole('--json verify postgres latest'), (ctx) => verifyPostgresJob(ctx, undefined)));
    const drills = await job('drill postgres callcenter (task)', taskRole('--json drill postgres --name callcenter'), (ctx) => drillPostgresJob(ctx, 'callcenter'));
    assert.ok(drills.every((d) => d.ok), JSON.stringify(drills));
    const redisDrills = await job('drill redis sessions (task)', taskRole('--json drill redis --name sessions'), (ctx) => drillRedisJob(ctx, 'sessions'));
    assert.ok(redisDrills.every((d) => d.ok), JSON.stringify(redisDrills));
    const kbDrills = await job('drill knowledge knowledge_base (task)', taskRole('--json drill knowledge --name knowledge_base'), (ctx) => drillKnowledgeJob(ctx, 'knowledge_base'));
    assert.ok(kbDrills.every((d) => d.ok), JSON.stringify(kbDrills));
    const all = await job('drill all (task)', taskRole('--json drill all'), (ctx) => drillAllJob(ctx));
    assert.ok(all.ok, JSON.stringify(all.drills.map((d) => d.failure)));
    await job('restore postgres (task)', taskRole('--json --help'), (ctx) => restorePostgresJob(ctx, { name: 'callcenter', backupId: 'latest', target: `${db.name}_restored`, confirm: undefined, clean: false, jobs: 1 }));
    await job('status freshness (function)', functionRole('StatusFunction'), (ctx) => checkFreshness(ctx));
    const parts = await job('partitions (function)', functionRole('PartitionsFunction'), (ctx) => ensurePartitionsJob(ctx, { dryRun: false }));
    assert.ok(parts.every((r) => r.status !== 'failed'), JSON.stringify(parts));

    // Each function reads its configuration from the SSM parameter (mocked at the SDK).
    for (const fn of ['PartitionsFunction', 'VerifyFunction', 'StatusFunction']) {
      const calls: AwsCall[] = [];
      callsByJob.set(`${fn} reads its configuration (SSM mocked)`, { principal: functionRole(fn), calls });
      const ssm = recordCalls(new SSMClient({ region: 'eu-central-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }), calls, () => ({ Parameter: { Value: opsText } }));
      const source = configSourceFromEnv(new Logger({ logLevel: 'SILENT' }), fnEnv(fn), new SSMProvider({ awsSdkV3Client: ssm }));
      await source.current();
    }

    // Something for prune to remove: an expired backup and an interrupted upload, both old.
    const admin = createS3Client(s3.env);
    await admin.send(new CreateMultipartUploadCommand({ Bucket: t.ref(bucketId), Key: 'ops/postgres/callcenter/20200101T000000Z/db.dump.zst' }));
    const uploads = path.join(s3.directory, t.ref(bucketId), '._S3rver_uploads');
    for (const u of await readdir(uploads)) await utimes(path.join(uploads, u), new Date('2020-01-01'), new Date('2020-01-01'));
    const adminRepo = new S3Repository({ bucket: t.ref(bucketId), prefix: 'ops', partSizeMiB: 5, queueSize: 2, client: admin });
    const old = { formatVersion: 1, id: '20200101T000000Z', component: 'postgres', name: 'callcenter', payload: { key: 'postgres/callcenter/20200101T000000Z/db.dump.zst', bytes: 3, sha256: '0'.repeat(64), streamCodec: 'zstd', compression: 'zstd', format: 'custom' }, startedAt: '2020-01-01T00:00:00Z', finishedAt: '2020-01-01T00:00:00Z', durationSeconds: 0, tools: {}, source: {} };
    await adminRepo.putBytes(old.payload.key, 'old');
    await adminRepo.putBytes('postgres/callcenter/20200101T000000Z/manifest.json', JSON.stringify(old));
    await job('prune (task)', taskRole('--json prune'), (ctx) => pruneJob(ctx, false));

    // Control planes, mocked at the SDK (recorded, answered in-process).
    const restoreCalls: AwsCall[] = [];
    callsByJob.set('restore request (function; ECS mocked)', { principal: functionRole('RestoreFunction'), calls: restoreCalls });
    const ecs = recordCalls(new ECSClient({ region: 'eu-central-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }), restoreCalls, () => ({ tasks: [{ taskArn: 'arn:aws:ecs:eu-central-1:123456789012:task/c/0123' }], failures: [] }));
    await startRestore({ component: 'postgres', backupId: 'latest', target: 'callcenter_restored' }, 'req-1', { ecs, env: restoreEnvironmentSchema.parse(fnEnv('RestoreFunction')) });
    const secretCalls: AwsCall[] = [];
    callsByJob.set('status secrets (function; Secrets Manager mocked)', { principal: functionRole('StatusFunction'), calls: secretCalls });
    const sm = recordCalls(new SecretsManagerClient({ region: 'eu-central-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }), secretCalls, () => ({ SecretString: JSON.stringify({ password: 'pw' }) }));
    await applyTargetSecrets(config, {}, new SecretsProvider({ awsSdkV3Client: sm }));
  });

  after(async () => {
    await removeLocalS3(s3);
    await redis?.stop();
    // The restore job's target, created by the run: a test removes what it made.
    if (db) await dropDatabase(`${db.name}_restored`);
    await db?.drop();
    await rm(work, { recursive: true, force: true });
  });

  /** Every requirement of every recorded call, with the principal's verdict. */
  async function judge(tpl: ResolvedTemplate): Promise<{ job: string; call: string; need: Requirement; allowed: boolean; detail: string }[]> {
    const out: { job: string; call: string; need: Requirement; allowed: boolean; detail: string }[] = [];
    for (const [job, { principal, calls }] of callsByJob) {
      for (const call of calls) {
        for (const need of controlPlane(tpl, call) ?? requirementsOf(call, { bucketId, keyId, t: tpl })) {
          const v = await evaluate(tpl, { roleId: principal }, need);
          out.push({ job, call: `${call.service}.${call.operation}`, need, allowed: v.allowed, detail: v.detail });
        }
      }
    }
    return out;
  }

  it('every recorded call of every job is allowed', async () => {
    const ops = (job: string) => new Set(callsByJob.get(job)!.calls.map((c) => c.operation));
    for (const op of ['CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload']) assert.ok(ops('backup knowledge knowledge_base (task)').has(op), `${op} recorded`);
    for (const op of ['ListMultipartUploads', 'AbortMultipartUpload', 'DeleteObjects']) assert.ok(ops('prune (task)').has(op), `prune: ${op} recorded`);
    const verdicts = await judge(t);
    const denied = verdicts.filter((v) => !v.allowed).map((v) => `${v.job}: ${v.call} needs ${v.need.action} on ${v.need.resource} -> ${v.detail}`);
    assert.deepEqual([...new Set(denied)], []);
    const perJob = [...callsByJob].map(([job, { calls }]) => `${job}: ${calls.length} calls, ${new Set(calls.map((c) => `${c.service}.${c.operation}`)).size} operations`);
    assert.ok(verdicts.length > 50, perJob.join('\n'));
    // The figure doc/deploy.md quotes.
    process.stdout.write(`# IAM sufficiency: ${verdicts.length} requirements of ${[...callsByJob.values()].reduce((n, j) => n + j.calls.length, 0)} calls\n# ${perJob.join('\n# ')}\n`);
  });

  /** Service-to-service paths: who calls, what, on which resource, under which policies. */
  function servicePaths(tpl: ResolvedTemplate): { label: string; principal: { roleId: string } | { service: string }; need: Requirement }[] {
    const topicId = tpl.ids('AWS::SNS::Topic').find((id) => id.startsWith('AlarmTopic'))!;
    const queueId = tpl.ids('AWS::SQS::Queue').find((id) => id.startsWith('ScheduleDeadLetters'))!;
    const alarmId = tpl.ids('AWS::CloudWatch::Alarm')[0]!;
    const taskFailedRule = tpl.ids('AWS::Events::Rule').find((id) => id.startsWith('TaskFailed'))!;
    const verifyRule = tpl.ids('AWS::Events::Rule').find((id) => id.startsWith('VerifyOnManifest'))!;
    const verifyFn = tpl.ids('AWS::Lambda::Function').find((id) => id.startsWith('VerifyFunction'))!;
    const account = { 'aws:SourceAccount': tpl.account };
    const out: { label: string; principal: { roleId: string } | { service: string }; need: Requirement }[] = [
      { label: 'alarm -> SNS topic', principal: { service: 'cloudwatch.amazonaws.com' }, need: { action: 'sns:Publish', resource: tpl.ref(topicId), resourcePolicyOf: topicId, context: { ...account, 'aws:SourceArn': tpl.arn(alarmId) } } },
      { label: 'alarm -> SNS topic key (GenerateDataKey)', principal: { service: 'cloudwatch.amazonaws.com' }, need: { action: 'kms:GenerateDataKey', resource: tpl.arn(keyId), resourcePolicyOf: keyId, context: account } },
      { label: 'alarm -> SNS topic key (Decrypt)', principal: { service: 'cloudwatch.amazonaws.com' }, need: { action: 'kms:Decrypt', resource: tpl.arn(keyId), resourcePolicyOf: keyId, context: account } },
      { label: 'task-failed rule -> SNS topic', principal: { service: 'events.amazonaws.com' }, need: { action: 'sns:Publish', resource: tpl.ref(topicId), resourcePolicyOf: topicId, context: { ...account, 'aws:SourceArn': tpl.arn(taskFailedRule) } } },
      { label: 'task-failed rule -> SNS topic key', principal: { service: 'events.amazonaws.com' }, need: { action: 'kms:GenerateDataKey', resource: tpl.arn(keyId), resourcePolicyOf: keyId, context: account } },
      { label: 'manifest rule -> verify function', principal: { service: 'events.amazonaws.com' }, need: { action: 'lambda:InvokeFunction', resource: tpl.arn(verifyFn), resourcePolicyOf: verifyFn, context: { ...account, 'aws:SourceArn': tpl.arn(verifyRule) } } },
      { label: 'manifest rule -> dead-letter queue', principal: { service: 'events.amazonaws.com' }, need: { action: 'sqs:SendMessage', resource: tpl.arn(queueId), resourcePolicyOf: queueId, context: { ...account, 'aws:SourceArn': tpl.arn(verifyRule) } } },
    ];
    // Every schedule's role: its target, PassRole for ECS targets, and the dead-letter queue.
    for (const id of tpl.ids('AWS::Scheduler::Schedule')) {
      const target = tpl.value(tpl.template.Resources[id]!.Properties!.Target) as Record<string, any>;
      const roleId = tpl.ids('AWS::IAM::Role').find((r) => tpl.arn(r) === target.RoleArn)!;
      const principal = { roleId };
      if (target.EcsParameters) {
        const defId = tpl.ids('AWS::ECS::TaskDefinition').find((d) => tpl.ref(d) === target.EcsParameters.TaskDefinitionArn)!;
        const def = tpl.template.Resources[defId]!.Properties!;
        out.push({ label: `${id} -> ecs:RunTask`, principal, need: { action: 'ecs:RunTask', resource: target.EcsParameters.TaskDefinitionArn, context: { 'ecs:cluster': target.Arn } } });
        for (const role of [def.TaskRoleArn, def.ExecutionRoleArn]) out.push({ label: `${id} -> iam:PassRole`, principal, need: { action: 'iam:PassRole', resource: String(tpl.value(role)), context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } } });
      } else {
        out.push({ label: `${id} -> lambda:InvokeFunction`, principal, need: { action: 'lambda:InvokeFunction', resource: target.Arn } });
      }
      out.push({ label: `${id} -> dead-letter queue`, principal, need: { action: 'sqs:SendMessage', resource: target.DeadLetterConfig.Arn, resourcePolicyOf: queueId } });
      // A queue under a customer key: the producer needs the key too (AWS: GenerateDataKey and Decrypt).
      const queueKey = tpl.template.Resources[queueId]!.Properties!.KmsMasterKeyId;
      if (queueKey) {
        const kmsId = tpl.ids('AWS::KMS::Key').find((k) => tpl.arn(k) === tpl.value(queueKey) || tpl.ref(k) === tpl.value(queueKey))!;
        for (const action of ['kms:GenerateDataKey', 'kms:Decrypt']) out.push({ label: `${id} -> dead-letter queue key`, principal, need: { action, resource: tpl.arn(kmsId), resourcePolicyOf: kmsId } });
      }
    }
    return out;
  }

  it('and no more than the jobs need: the nightly dump task cannot write or delete base backups, a drill task writes only its records, never a payload or manifest', async () => {
    const bucket = t.arn(bucketId);
    const obj = (key: string) => `${bucket}/ops/${key}`;
    const cases: [string, string, string, boolean][] = [
      ['--json backup postgres --name callcenter', 's3:DeleteObject', 'postgres/callcenter/20261201T040000Z/db.dump.zst', true],
      ['--json backup postgres --name callcenter', 's3:DeleteObject', 'postgres/callcenter/base/20261201T033000Z/base.tar.zst', false],
      ['--json backup postgres --name callcenter', 's3:PutObject', 'postgres/callcenter/base/20261201T033000Z/manifest.json', false],
      ['--json drill postgres --name callcenter', 's3:PutObject', 'postgres/callcenter/20261201T040000Z/drill.json', true],
      ['--json drill postgres --name callcenter', 's3:PutObject', 'postgres/callcenter/20261201T040000Z/verification.json', true],
      ['--json drill postgres --name callcenter', 's3:PutObject', 'postgres/callcenter/20261201T040000Z/db.dump.zst', false],
      ['--json drill postgres --name callcenter', 's3:PutObject', 'postgres/callcenter/20261201T040000Z/manifest.json', false],
      ['--json drill redis --name sessions', 's3:PutObject', 'redis/sessions/20261201T041500Z/dump.rdb.zst', false],
      ['--json drill knowledge --name knowledge_base', 's3:PutObject', 'knowledge/knowledge_base/20261201T010000Z/manifest.json', false],
    ];
    for (const [command, action, key, allowed] of cases) {
      const v = await evaluate(t, { roleId: taskRole(command) }, { action, resource: obj(key) });
      assert.equal(v.allowed, allowed, `${command}: ${action} on ${key}`);
    }
  });

  it('service-to-service: alarms, rules and schedules reach their targets, keys and dead-letter queue', async () => {
    const paths = servicePaths(t);
    assert.ok(paths.length > 20, `${paths.length} paths`);
    const denied: string[] = [];
    for (const p of paths) {
      const v = await evaluate(t, p.principal, p.need);
      if (!v.allowed) denied.push(`${p.label}: ${p.need.action} on ${p.need.resource} -> ${v.detail}`);
    }
    assert.deepEqual(denied, []);
  });

  /** Starting a task: ECS fetches its secrets and configuration with the execution role. */
  function taskStartPaths(tpl: ResolvedTemplate): { label: string; principal: { roleId: string }; need: Requirement }[] {
    const out: { label: string; principal: { roleId: string }; need: Requirement }[] = [];
    for (const id of tpl.ids('AWS::ECS::TaskDefinition')) {
      const def = tpl.template.Resources[id]!.Properties!;
      const roleId = (def.ExecutionRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      for (const secret of (def.ContainerDefinitions[0].Secrets ?? []) as { Name: string; ValueFrom: unknown }[]) {
        const from = String(tpl.value(secret.ValueFrom));
        const need: Requirement = from.startsWith('arn:aws:secretsmanager:')
          ? { action: 'secretsmanager:GetSecretValue', resource: from.split(':').slice(0, 7).join(':') }
          : { action: 'ssm:GetParameters', resource: from.startsWith('arn:') ? from : `arn:aws:ssm:${tpl.region}:${tpl.account}:parameter${from.startsWith('/') ? '' : '/'}${from}` };
        out.push({ label: `${id} starts with ${secret.Name}`, principal: { roleId }, need });
      }
    }
    return out;
  }

  it('starting any task: its execution role may fetch each of its secrets and its configuration', async () => {
    const paths = taskStartPaths(t);
    assert.ok(paths.length >= 7, `${paths.length} secrets`);
    const denied: string[] = [];
    for (const p of paths) if (!(await evaluate(t, p.principal, p.need)).allowed) denied.push(`${p.label}: ${p.need.action} on ${p.need.resource}`);
    assert.deepEqual(denied, []);
  });

  it('the same holds on a stage with two databases, two Redis and no account, and on a created VPC without NAT gateway', async () => {
    const secret = (n: string) => `arn:aws:secretsmanager:eu-central-1:123456789012:secret:${n}-AbCdEf`;
    const stages: Record<string, { stage: (s: any) => void; ops: (o: any) => void }> = {
      'two databases, two Redis, no account': {
        stage: (s) => delete s.account,
        ops: (o) => {
          o.postgres[0].passwordSecretArn = secret('callcenter');
          o.postgres.push({ ...o.postgres[0], name: 'billing', url: 'postgresql://ops_backup@billing.example:5432/billing', passwordSecretArn: secret('billing'), partitions: undefined });
          o.redis.push({ ...o.redis[0], name: 'queue', url: 'redis://queue.example:6379', passwordSecretArn: secret('queue') });
        },
      },
      'created VPC without NAT gateway': {
        stage: (s) => {
          s.vpc = { mode: 'create', maxAzs: 2, natGateways: 0 };
          s.postgresSecurityGroupIds = [];
          s.redisSecurityGroupIds = [];
          // EFS lives in another VPC: a created VPC keeps its knowledge in S3 or has none (stage validation).
          s.knowledgeFileSystems = {};
        },
        ops: (o) => (o.knowledge = []),
      },
    };
    for (const [label, edit] of Object.entries(stages)) {
      const dir = path.join(work, label.replace(/\W+/g, '-'));
      await mkdir(dir, { recursive: true });
      const ops = JSON.parse(await readFile(path.join(ROOT, 'cdk/stages/example.ops.config.json'), 'utf8'));
      edit.ops(ops);
      const stage = JSON.parse(await readFile(path.join(ROOT, EXAMPLE_STAGE), 'utf8'));
      stage.opsConfig = 'ops.json';
      edit.stage(stage);
      await writeFile(path.join(dir, 'ops.json'), JSON.stringify(ops));
      await writeFile(path.join(dir, 'stage.json'), JSON.stringify(stage));
      const { app, stack } = buildOpsApp(path.join(dir, 'stage.json'), { outdir: path.join(dir, 'out'), nag: false });
      app.synth();
      const tpl = new ResolvedTemplate(JSON.parse(await readFile(path.join(dir, 'out', `${stack.stackName}.template.json`), 'utf8')) as TemplateJson, '123456789012', 'eu-central-1');
      const denied: string[] = [];
      for (const p of [...servicePaths(tpl), ...taskStartPaths(tpl)]) if (!(await evaluate(tpl, p.principal, p.need)).allowed) denied.push(`${p.label}: ${p.need.action} on ${p.need.resource}`);
      const statusRole = tpl.ids('AWS::IAM::Role').find((id) => id.startsWith('StatusRole'))!;
      for (const arn of [...new Set([...ops.postgres, ...ops.redis].map((x: { passwordSecretArn?: string }) => x.passwordSecretArn).filter(Boolean))] as string[]) {
        if (!(await evaluate(tpl, { roleId: statusRole }, { action: 'secretsmanager:GetSecretValue', resource: arn })).allowed) denied.push(`status function: GetSecretValue on ${arn}`);
      }
      assert.deepEqual(denied, [], label);
    }
  });

  // A custom widget calls its function with the credentials of whoever views the dashboard:
  // the stack's part is naming the status function; a viewer needs lambda:InvokeFunction on it.
  it("the dashboard's custom widget calls the status function, and a viewer allowed to invoke it is allowed", async () => {
    const [, dashboard] = Object.entries(template.Resources).find(([, r]) => r.Type === 'AWS::CloudWatch::Dashboard')!;
    const body = JSON.parse(String(t.value(dashboard.Properties!.DashboardBody))) as { widgets: { type: string; properties: { endpoint?: string } }[] };
    const statusFn = t.ids('AWS::Lambda::Function').find((id) => id.startsWith('StatusFunction'))!;
    const custom = body.widgets.filter((w) => w.type === 'custom');
    assert.deepEqual(custom.map((w) => w.properties.endpoint), [t.arn(statusFn)]);
    const viewer = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: t.arn(statusFn) }] };
    const { runSimulation } = await import('@cloud-copilot/iam-simulate');
    const r = await runSimulation({ identityPolicies: [{ name: 'viewer', policy: viewer }], serviceControlPolicies: [], resourceControlPolicies: [], request: { principal: `arn:aws:iam::${t.account}:role/oncall`, action: 'lambda:InvokeFunction', resource: { resource: t.arn(statusFn), accountId: t.account }, contextVariables: {} } } as never, {});
    assert.equal(r.resultType !== 'error' && r.overallResult, 'Allowed');
  });

  it('without the topic statement for CloudWatch (enforceSSL replaced the default policy), alarms cannot publish', async () => {
    const cut = structuredClone(template);
    for (const r of Object.values(cut.Resources)) {
      if (r.Type === 'AWS::SNS::TopicPolicy') r.Properties!.PolicyDocument.Statement = (r.Properties!.PolicyDocument.Statement as any[]).filter((st) => st.Sid !== 'CloudWatchAlarmsPublish');
    }
    const tpl = new ResolvedTemplate(cut, t.account, t.region);
    const alarm = servicePaths(tpl).find((p) => p.label === 'alarm -> SNS topic')!;
    assert.equal((await evaluate(tpl, alarm.principal, alarm.need)).allowed, false);
  });

  for (const [label, remove, expectJob, expectAction] of [
    ['prune may no longer list interrupted uploads', (s: any) => JSON.stringify(s).includes('s3:ListBucketMultipartUploads'), 'prune (task)', 's3:ListBucketMultipartUploads'],
    ['the status function may no longer read the Redis secret', (s: any) => JSON.stringify(s).includes('sessions/auth'), 'status secrets (function; Secrets Manager mocked)', 'secretsmanager:GetSecretValue'],
    ['the restore function may no longer pass the task role', (s: any) => JSON.stringify(s).includes('iam:PassRole'), 'restore request (function; ECS mocked)', 'iam:PassRole'],
    ['backups may no longer use the key', (s: any) => JSON.stringify(s.Action).includes('kms:GenerateDataKey'), 'backup postgres callcenter (task)', 'kms:GenerateDataKey'],
  ] as const) {
    it(`removing one needed permission fails, naming the job, the call and the action: ${label}`, async () => {
      const cut = structuredClone(template);
      for (const r of Object.values(cut.Resources)) {
        if (r.Type !== 'AWS::IAM::Policy') continue;
        const doc = r.Properties!.PolicyDocument;
        doc.Statement = (doc.Statement as any[]).filter((s) => !remove(s));
      }
      const verdicts = await judge(new ResolvedTemplate(cut, t.account, t.region));
      const denied = verdicts.filter((v) => !v.allowed);
      assert.ok(denied.some((v) => v.job === expectJob && v.need.action === expectAction), `expected ${expectJob} to be denied ${expectAction}; denied: ${denied.map((v) => `${v.job} ${v.call} ${v.need.action}`).join('; ')}`);
    });
  }
});

/** ECS and Secrets Manager calls: the actions and resources AWS authorizes them on. */
function controlPlane(t: ResolvedTemplate, call: AwsCall): Requirement[] | undefined {
  if (call.service === 'SSM' && call.operation === 'GetParameter') {
    const name = String(call.input.Name);
    return [{ action: 'ssm:GetParameter', resource: `arn:aws:ssm:${t.region}:${t.account}:parameter${name.startsWith('/') ? '' : '/'}${name}` }];
  }
  if (call.service === 'SecretsManager' && call.operation === 'GetSecretValue') return [{ action: 'secretsmanager:GetSecretValue', resource: String(call.input.SecretId) }];
  if (call.service === 'ECS' && call.operation === 'RunTask') {
    const defArn = String(call.input.taskDefinition);
    const defId = t.ids('AWS::ECS::TaskDefinition').find((id) => t.ref(id) === defArn);
    assert.ok(defId, `RunTask names a task definition of the stack: ${defArn}`);
    const def = t.template.Resources[defId!]!.Properties!;
    const roles = [def.TaskRoleArn, def.ExecutionRoleArn].map((r) => String(t.value(r)));
    const cluster = String(call.input.cluster);
    return [
      { action: 'ecs:RunTask', resource: defArn, context: { 'ecs:cluster': cluster } },
      ...roles.map((role) => ({ action: 'iam:PassRole', resource: role, context: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } })),
      ...(call.input.tags || call.input.propagateTags ? [{ action: 'ecs:TagResource', resource: `arn:aws:ecs:${t.region}:${t.account}:task/${cluster.split('/').pop()}/0123`, context: { 'ecs:CreateAction': 'RunTask' } }] : []),
    ];
  }
  return undefined;
}

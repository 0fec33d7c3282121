import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Annotations, CfnOutput, type CfnResource, Duration, Stack, Tags, TimeZone, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import type { Construct } from 'constructs';
import { OpsAlarms } from './alarms.js';
import { OpsDashboard } from './dashboard.js';
import { JobFunction, LAMBDA_RUNTIME, REPO_ROOT } from './job-function.js';
import { CONTAINER_NAME, JobTasks, TASK_LOG_STREAM_PREFIX, type JobTask } from './job-tasks.js';
import { SSM_STANDARD_MAX_BYTES } from '../src/config/remote.js';
import { acknowledgeNagFindings } from './nag-acknowledgements.js';
import { PG_MAJOR } from './versions.js';
import { configDstWarnings } from '../src/config/dst.js';
import { grantRepository } from './repository-grants.js';
import { accessLogBucketProps, backupBucketProps, deadLetterQueueProps, keyProps, logGroupProps } from './secure-defaults.js';
import type { LoadedStage } from './stage-config.js';

/** The id of the bucket's one replication rule: the replication metrics' RuleId dimension. */
const REPLICATION_RULE_ID = 'backups-second-copy';

/** The jobs' subnets in a VPC the stack creates: isolated when there is no NAT gateway. */
const jobsSubnetType = (stage: LoadedStage['stage']) => (stage.vpc.mode === 'create' && stage.vpc.natGateways === 0 ? ec2.SubnetType.PRIVATE_ISOLATED : ec2.SubnetType.PRIVATE_WITH_EGRESS);

/**
 * Interface endpoints for a VPC without a NAT gateway: image pulls (ECR API and Docker,
 * layers come through the S3 gateway endpoint), logs, secrets, configuration, metrics,
 * ECS (the restore and status functions), the Scheduler (status), STS, and Amazon Managed
 * Prometheus when remote write goes there.
 */
export function noNatEndpoints(stage: LoadedStage['stage']): [string, ec2.IInterfaceVpcEndpointService][] {
  const list: [string, ec2.IInterfaceVpcEndpointService][] = [
    ['EcrApiEndpoint', ec2.InterfaceVpcEndpointAwsService.ECR],
    ['EcrDockerEndpoint', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
    ['LogsEndpoint', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
    ['SecretsManagerEndpoint', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
    ['SsmEndpoint', ec2.InterfaceVpcEndpointAwsService.SSM],
    ['MonitoringEndpoint', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING],
    ['EcsEndpoint', ec2.InterfaceVpcEndpointAwsService.ECS],
    ['SchedulerEndpoint', new ec2.InterfaceVpcEndpointAwsService('scheduler')],
    ['StsEndpoint', ec2.InterfaceVpcEndpointAwsService.STS],
  ];
  if (stage.prometheus.workspaceArn) list.push(['PrometheusEndpoint', ec2.InterfaceVpcEndpointAwsService.PROMETHEUS_WORKSPACES]);
  return list;
}

/** Keys of the repository inside the bucket: `ops/<component>/<name>/<backup-id>/…`. */
export const REPO_PREFIX = 'ops/';

export interface OpsStackProps extends StackProps {
  loaded: LoadedStage;
}

/**
 * Everything of DESIGN.md's "Shape" in one stack: the repository bucket, the jobs
 * (Lambdas and Fargate tasks), their schedules in the configured time zone, the
 * freshness checker, alarms to SNS and a dashboard. All names derive from the stage, so
 * a second stage or account is a second stage file.
 */
export class OpsStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly tasks: JobTasks;
  readonly functions: Record<'partitions' | 'verify' | 'restore' | 'status', lambda.IFunction>;

  constructor(scope: Construct, id: string, props: OpsStackProps) {
    super(scope, id, props);
    const { stage, ops, opsText } = props.loaded;
    for (const [k, v] of Object.entries({ application: 'ops-automation', stage: stage.stackName, ...stage.tags })) Tags.of(this).add(k, v);

    // --- Network: the jobs' own security group, let into the databases' groups.
    const vpc = this.vpc(props.loaded);
    const subnets: ec2.SubnetSelection =
      stage.vpc.mode === 'import' ? { subnets: vpc.privateSubnets } : { subnetType: jobsSubnetType(stage) };
    const jobsSg = new ec2.SecurityGroup(this, 'JobsSecurityGroup', { vpc, description: 'ops-automation jobs: outbound to databases, Redis, EFS, AWS APIs', allowAllOutbound: true });
    const ports = (urls: (string | undefined)[], fallback: number) => [...new Set(urls.map((u) => (u ? Number(new URL(u).port || fallback) : fallback)))];
    const ingress = (groups: string[], portList: number[], what: string) =>
      groups.forEach((groupId, i) =>
        portList.forEach((port) =>
          new ec2.CfnSecurityGroupIngress(this, `${what}Ingress${i}-${port}`, { groupId, ipProtocol: 'tcp', fromPort: port, toPort: port, sourceSecurityGroupId: jobsSg.securityGroupId, description: `${what} from ops-automation jobs` }),
        ),
      );
    // Without a NAT gateway the private subnets reach AWS only through endpoints: every
    // service a task or an in-VPC function calls gets one (doc/deploy.md lists them), open
    // to the jobs' group only.
    if (jobsSubnetType(stage) === ec2.SubnetType.PRIVATE_ISOLATED) {
      for (const [endpointId, service] of noNatEndpoints(stage)) {
        const endpoint = new ec2.InterfaceVpcEndpoint(this, endpointId, { vpc, service, privateDnsEnabled: true, subnets, open: false });
        endpoint.connections.allowDefaultPortFrom(jobsSg, 'HTTPS from ops-automation jobs');
      }
    }
    ingress(stage.postgresSecurityGroupIds, ports(ops.postgres.map((d) => d.url), 5432), 'Postgres');
    ingress(stage.redisSecurityGroupIds, ports(ops.redis.map((r) => r.url), 6379), 'Redis');

    // --- Repository.
    const key = new kms.Key(this, 'BackupKey', keyProps(stage, `ops-automation ${stage.stackName}: backups, queues, alarm topic`));
    for (const service of ['cloudwatch.amazonaws.com', 'events.amazonaws.com']) {
      key.addToResourcePolicy(new iam.PolicyStatement({ principals: [new iam.ServicePrincipal(service)], actions: ['kms:Decrypt', 'kms:GenerateDataKey*'], resources: ['*'], conditions: { StringEquals: { 'aws:SourceAccount': this.account } } }));
    }
    const accessLogs = new s3.Bucket(this, 'AccessLogBucket', accessLogBucketProps(stage));
    this.bucket = new s3.Bucket(this, 'BackupBucket', { ...backupBucketProps(stage, key, accessLogs), ...this.replication(props.loaded) });
    if (stage.bucket.replication && stage.bucket.objectLock) {
      // S3 replicates an Object Lock bucket's objects only if the role may read their retention
      // and legal hold; without these every object fails replication, silently but for the alarm.
      const role = this.bucket.node.tryFindChild('ReplicationRole') as iam.Role | undefined;
      if (!role) throw new Error('the bucket has replication rules but CDK created no ReplicationRole');
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObjectRetention', 's3:GetObjectLegalHold'], resources: [this.bucket.arnForObjects('*')] }));
    }
    const repositoryUrl = `s3://${this.bucket.bucketName}/${REPO_PREFIX.replace(/\/$/, '')}`;

    // --- Configuration in SSM: functions re-read it within a minute, tasks at start.
    const configParameter = new ssm.StringParameter(this, 'OpsConfig', {
      parameterName: `/${stage.stackName}/ops-config`,
      description: 'ops-automation configuration (opsctl config push replaces it; validated before every write)',
      stringValue: opsText,
      tier: Buffer.byteLength(opsText) > SSM_STANDARD_MAX_BYTES ? ssm.ParameterTier.ADVANCED : ssm.ParameterTier.STANDARD,
    });
    const metricsEnvironment: Record<string, string> = {};
    if (stage.prometheus.remoteWriteUrl) metricsEnvironment[ops.metrics.prometheus.urlEnv] = stage.prometheus.remoteWriteUrl;

    // --- Fargate jobs.
    this.tasks = new JobTasks(this, 'Jobs', {
      stage,
      ops,
      vpc,
      subnets,
      securityGroup: jobsSg,
      bucket: this.bucket,
      key,
      repoPrefix: REPO_PREFIX,
      repositoryUrl,
      configParameter,
      metricsEnvironment,
    });
    const allTasks = this.tasks.all;
    if (stage.prometheus.workspaceArn) for (const t of [...allTasks, ...this.tasks.receivers.map((r) => r.task)]) this.grantRemoteWrite(t.definition.taskRole, stage.prometheus.workspaceArn);

    // --- Lambdas.
    const fnEnv = { OPS_CONFIG_PARAMETER: configParameter.parameterName, OPS_REPOSITORY_URL: repositoryUrl, ...metricsEnvironment, ...(stage.prometheus.secretArn ? { OPS_PROMETHEUS_SECRET_ARN: stage.prometheus.secretArn } : {}) };
    const inVpc = { vpc, securityGroup: jobsSg, subnets };
    const partitions = new JobFunction(this, 'Partitions', { stage, handler: 'partitions', description: 'Partition maintenance: create ahead, retire by retention', environment: fnEnv, memorySize: 512, timeout: Duration.minutes(10), vpc: inVpc });
    const verify = new JobFunction(this, 'Verify', {
      stage,
      handler: 'verify',
      description: 'Verify the newest backups (checksum, catalogue, full read) with pg_restore from the layer',
      environment: fnEnv,
      memorySize: 2048,
      timeout: Duration.minutes(15),
      layers: [this.pgRestoreLayer(props.loaded)],
    });
    const status = new JobFunction(this, 'Status', { stage, handler: 'status', description: 'Freshness check and status report (age gauges for the stale alarms)', environment: fnEnv, memorySize: 512, timeout: Duration.minutes(2), vpc: inVpc });
    const restore = new JobFunction(this, 'Restore', {
      stage,
      handler: 'restore',
      description: 'Start a restore as a Fargate task (manual invoke only)',
      memorySize: 256,
      timeout: Duration.seconds(30),
      environment: {
        OPS_CLUSTER_ARN: this.tasks.cluster.clusterArn,
        OPS_RESTORE_TASK_DEFINITION: this.tasks.restore.definition.taskDefinitionArn,
        OPS_CONTAINER_NAME: CONTAINER_NAME,
        OPS_SUBNETS: vpc.selectSubnets(subnets).subnetIds.join(','),
        OPS_SECURITY_GROUPS: jobsSg.securityGroupId,
        OPS_LOG_GROUP: this.tasks.logGroup.logGroupName,
        OPS_LOG_STREAM_PREFIX: TASK_LOG_STREAM_PREFIX,
      },
    });
    this.functions = { partitions: partitions.fn, verify: verify.fn, restore: restore.fn, status: status.fn };

    for (const f of [partitions, verify, status]) configParameter.grantRead(f.fn);
    for (const db of ops.postgres) grantRepository(partitions.fn, this.bucket, key, `${REPO_PREFIX}postgres/${db.name}/`, { read: true, write: true });
    grantRepository(verify.fn, this.bucket, key, REPO_PREFIX, { read: true, writePattern: '*/verification.json' });
    grantRepository(status.fn, this.bucket, key, REPO_PREFIX, { read: true });
    const arns = (list: { passwordSecretArn?: string | undefined }[]) => [...new Set(list.map((t) => t.passwordSecretArn).filter((a): a is string => Boolean(a)))];
    const dbSecrets = arns(ops.postgres);
    // The status report probes every database and Redis: each with its own secret.
    const statusSecrets = [...new Set([...dbSecrets, ...arns(ops.redis)])];
    if (dbSecrets.length > 0) partitions.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: dbSecrets }));
    if (statusSecrets.length > 0) status.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: statusSecrets }));
    for (const f of [partitions.fn, verify.fn, status.fn]) {
      if (stage.prometheus.secretArn) f.addToRolePolicy(new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [stage.prometheus.secretArn] }));
      if (stage.prometheus.workspaceArn) this.grantRemoteWrite(f.role!, stage.prometheus.workspaceArn);
    }
    this.grantRunTasks(restore.fn, this.tasks.restoreDefinitions);
    const statusUrl = status.fn.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.AWS_IAM });

    // --- Schedules (EventBridge Scheduler, the configured time zone, retries, a dead-letter queue).
    const dlq = new sqs.Queue(this, 'ScheduleDeadLetters', deadLetterQueueProps());
    const group = new scheduler.ScheduleGroup(this, 'Schedules', { scheduleGroupName: stage.stackName });
    const tz = TimeZone.of(ops.timezone);
    // A local time that does not exist or repeats on a daylight-saving day: skipped or run once.
    for (const w of configDstWarnings(ops)) Annotations.of(this).addWarningV2(`ops:dst:${w.schedule}:${w.date}`, w.message);
    // The status report's AWS part: schedules, the newest run of each job, alarms firing.
    status.fn.addEnvironment('OPS_STACK_NAME', stage.stackName);
    status.fn.addEnvironment('OPS_SCHEDULE_GROUP', group.scheduleGroupName);
    status.fn.addEnvironment('OPS_CLUSTER_ARN', this.tasks.cluster.clusterArn);
    status.fn.addEnvironment('OPS_RUNBOOK_BASE_URL', stage.alerts.runbookBaseUrl);
    status.fn.addEnvironment('OPS_DASHBOARD_URL', `https://${stage.region}.console.aws.amazon.com/cloudwatch/home?region=${stage.region}#dashboards:name=${stage.stackName}`);
    status.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['scheduler:ListSchedules'], resources: ['*'] }));
    status.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['ecs:ListTasks'], resources: ['*'], conditions: { ArnEquals: { 'ecs:cluster': this.tasks.cluster.clusterArn } } }));
    status.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['ecs:DescribeTasks'], resources: [`arn:${this.partition}:ecs:${this.region}:${this.account}:task/${this.tasks.cluster.clusterName}/*`] }));
    status.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['cloudwatch:DescribeAlarms'], resources: [`arn:${this.partition}:cloudwatch:${this.region}:${this.account}:alarm:${stage.stackName}-*`] }));
    const common = { deadLetterQueue: dlq, retryAttempts: 2, maxEventAge: Duration.hours(1) };
    const schedule = (id: string, expression: string, target: scheduler.IScheduleTarget, description: string, timeZone: TimeZone | undefined = tz) =>
      new scheduler.Schedule(this, `Schedule-${id}`, { schedule: scheduler.ScheduleExpression.expression(expression, timeZone), target, scheduleGroup: group, description });
    const fargate = (task: JobTask) =>
      new schedulerTargets.EcsRunFargateTask(this.tasks.cluster, { ...common, taskDefinition: task.definition, vpcSubnets: subnets, securityGroups: [jobsSg], propagateTags: true, enableEcsManagedTags: true });
    const invoke = (fn: lambda.IFunction, input: unknown) => new schedulerTargets.LambdaInvoke(fn, { ...common, input: scheduler.ScheduleTargetInput.fromObject(input) });

    const backupTask = (component: string, name: string) => this.tasks.backups.find((t) => t.job === `backup-${component}:${name}`)!;
    for (const db of ops.postgres) {
      schedule(`backup-postgres-${db.name}`, db.backup.schedule, fargate(backupTask('postgres', db.name)), `pg_dump of ${db.name} to the repository`);
      schedule(`verify-postgres-${db.name}`, db.verify.schedule, invoke(verify.fn, { component: 'postgres', name: db.name }), `verify the newest backup of ${db.name}`);
      schedule(`drill-postgres-${db.name}`, db.drill.schedule, fargate(this.tasks.drills.find((d) => d.job === `drill:${db.name}`)!), `restore drill of ${db.name}`);
      if (db.partitions && db.partitions.tables.length > 0) schedule(`partitions-${db.name}`, db.partitions.schedule, invoke(partitions.fn, { name: db.name }), `partition maintenance of ${db.name}`);
    }
    const drillTask = (job: string) => this.tasks.drills.find((d) => d.job === job)!;
    for (const r of ops.redis) {
      schedule(`backup-redis-${r.name}`, r.backup.schedule, fargate(backupTask('redis', r.name)), `Redis backup of ${r.name}`);
      schedule(`drill-redis-${r.name}`, r.drill.schedule, fargate(drillTask(`drill-redis:${r.name}`)), `restore drill of Redis ${r.name} into a scratch redis-server`);
    }
    for (const k of ops.knowledge) {
      schedule(`backup-knowledge-${k.name}`, k.backup.schedule, fargate(backupTask('knowledge', k.name)), `knowledge-base backup of ${k.name}`);
      schedule(`drill-knowledge-${k.name}`, k.drill.schedule, fargate(drillTask(`drill-knowledge:${k.name}`)), `restore drill of knowledge base ${k.name} into a scratch directory`);
    }
    schedule('drill-all', ops.drillAll.schedule, fargate(this.tasks.drillAll), 'quarterly disaster-recovery drill: every component, RTO and RPO');
    for (const db of ops.postgres.filter((d) => d.pitr.enabled)) {
      schedule(`backup-postgres-base-${db.name}`, db.pitr.baseBackup.schedule, fargate(backupTask('postgres-base', db.name)), `base backup of ${db.name} for point-in-time recovery`);
      schedule(`drill-pitr-${db.name}`, db.pitr.drill.schedule, fargate(drillTask(`drill-pitr:${db.name}`)), `point-in-time recovery drill of ${db.name}`);
    }
    schedule('prune', stage.schedules.prune, fargate(this.tasks.prune), 'retention: delete expired backups, never the newest verified ones');
    schedule('status', stage.schedules.status, invoke(status.fn, { scope: 'freshness' }), 'freshness check: age gauges for the stale alarms');

    // --- Each new manifest (a completed backup) is verified at once.
    new events.Rule(this, 'VerifyOnManifest', {
      description: 'A backup completed (its manifest was written): verify it',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: { bucket: { name: [this.bucket.bucketName] }, object: { key: [{ wildcard: `${REPO_PREFIX}*/manifest.json` }] } },
      },
      targets: [new eventTargets.LambdaFunction(verify.fn, { deadLetterQueue: dlq, retryAttempts: 2, maxEventAge: Duration.hours(2) })],
    });

    // --- Alerting.
    const topic = new sns.Topic(this, 'AlarmTopic', { displayName: `ops-automation ${stage.stackName}`, masterKey: key, enforceSSL: true });
    // enforceSSL gives the topic a policy of its own, which replaces SNS's default one:
    // without this statement CloudWatch alarms are refused sns:Publish and page no one.
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account }, ArnLike: { 'aws:SourceArn': `arn:${this.partition}:cloudwatch:${this.region}:${this.account}:alarm:${stage.stackName}-*` } },
      }),
    );
    for (const email of stage.alerts.emails) topic.addSubscription(new subscriptions.EmailSubscription(email));
    const topics: sns.ITopic[] = [topic];
    if (stage.alerts.topicArn) topics.push(sns.Topic.fromTopicArn(this, 'ExternalAlarmTopic', stage.alerts.topicArn));
    const taskFailures = new events.Rule(this, 'TaskFailed', {
      description: 'A job task failed to start or exited non-zero',
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: { clusterArn: [this.tasks.cluster.clusterArn], lastStatus: ['STOPPED'], $or: [{ containers: { exitCode: [{ 'anything-but': 0 }] } }, { stopCode: ['TaskFailedToStart'] }] },
      },
      targets: [new eventTargets.SnsTopic(topic, { message: events.RuleTargetInput.fromText(`ops-automation task ${events.EventField.fromPath('$.detail.taskDefinitionArn')} stopped: ${events.EventField.fromPath('$.detail.stoppedReason')}`) })],
    });
    const alarms = new OpsAlarms(this, 'Alarms', {
      stage,
      ops,
      namespace: ops.metrics.namespace,
      topics,
      deadLetterQueue: dlq,
      taskFailureRuleName: taskFailures.ruleName,
      functions: this.functions,
      ...(stage.bucket.replication ? { replication: { sourceBucket: this.bucket.bucketName, destinationBucket: stage.bucket.replication.destinationBucketArn.split(':::')[1] ?? '', ruleId: REPLICATION_RULE_ID } } : {}),
    });
    const dashboard = new OpsDashboard(this, 'Dashboard', { dashboardName: stage.stackName, namespace: ops.metrics.namespace, ops, alarms: alarms.alarms, statusFunction: status.fn });

    // CDK's bucket-notifications handler (a deploy-time Lambda) would log into a group Lambda
    // creates on first run, with no expiry: the same retention as every other log group.
    const notifications = this.node.tryFindChild('BucketNotificationsHandler050a0587b7544547bf325f094a3db834')?.node.tryFindChild('Resource') as CfnResource | undefined;
    if (notifications) new logs.LogGroup(this, 'BucketNotificationsLogs', logGroupProps(stage, `/aws/lambda/${notifications.ref}`));

    new CfnOutput(this, 'BucketName', { value: this.bucket.bucketName });
    new CfnOutput(this, 'RepositoryUrl', { value: repositoryUrl, description: 'OPS_REPOSITORY_URL for opsctl against this stage' });
    new CfnOutput(this, 'ConfigParameter', { value: configParameter.parameterName });
    new CfnOutput(this, 'StatusUrl', { value: statusUrl.url, description: 'IAM-authenticated status report' });
    // A self-managed database host (EC2, containers) attaches this to push and fetch its own WAL: no delete, no other prefix.
    for (const db of ops.postgres.filter((d) => d.pitr.enabled)) {
      const policy = new iam.ManagedPolicy(this, `WalArchivePolicy-${db.name}`, {
        description: `opsctl wal push/fetch for ${db.name}: its own WAL prefix only, no delete`,
        statements: [
          new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:PutObject'], resources: [`${this.bucket.bucketArn}/${REPO_PREFIX}wal/${db.name}/*`] }),
          // An archived segment is never overwritten: opsctl writes each one with If-None-Match: *,
          // and a write without it (a hand-run aws s3 cp, another tool) is refused.
          new iam.PolicyStatement({ effect: iam.Effect.DENY, actions: ['s3:PutObject'], resources: [`${this.bucket.bucketArn}/${REPO_PREFIX}wal/${db.name}/*`], conditions: { Null: { 's3:if-none-match': 'true' } } }),
          new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [`${REPO_PREFIX}wal/${db.name}/*`] } } }),
          new iam.PolicyStatement({ actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [key.keyArn] }),
          // `wal receive` run on the host removes the chunks of a segment once it is archived whole.
          ...(db.pitr.receive.enabled ? [new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: [`${this.bucket.bucketArn}/${REPO_PREFIX}wal/${db.name}/chunks/*`] })] : []),
        ],
      });
      const id = db.name.replace(/[^A-Za-z0-9]/g, '');
      // A point-in-time restore on a host (doc/runbooks/restore-postgres.md): read-only, this
      // database's base backups and WAL, nothing else (no dumps, no other database, no write).
      const restorePolicy = new iam.ManagedPolicy(this, `PitrRestorePolicy-${db.name}`, {
        description: `opsctl restore postgres --base for ${db.name}: its base backups and WAL, read-only`,
        statements: [
          new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [`${this.bucket.bucketArn}/${REPO_PREFIX}postgres/${db.name}/base/*`, `${this.bucket.bucketArn}/${REPO_PREFIX}wal/${db.name}/*`] }),
          new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [`${REPO_PREFIX}postgres/${db.name}/base/*`, `${REPO_PREFIX}wal/${db.name}/*`] } } }),
          new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }),
        ],
      });
      new CfnOutput(this, `PitrRestorePolicyArn${id}`, { value: restorePolicy.managedPolicyArn, description: `attach to the role of a host that restores ${db.name} to a point in time (read-only)` });
      new CfnOutput(this, `WalArchivePolicyArn${id}`, { value: policy.managedPolicyArn, description: `attach to ${db.name}'s host role (with its S3 route: the bucket's region endpoint through NAT, or an S3 gateway endpoint in its VPC)` });
      // Complete, as postgresql.conf takes them: the region and the repository travel in the
      // command, so the host needs no AWS_REGION of its own (the S3 client otherwise falls
      // back to the shared config file, then us-east-1, and follows S3's redirect from there).
      // The config file is this stage's ops config on the host (doc/pitr.md), readable by postgres.
      const env = `AWS_REGION=${this.region} OPS_REPOSITORY_URL=${repositoryUrl}`;
      // --resident: after the first call, segments go to a resident pusher instead of a Node
      // started for each one (the archive_command's CPU on the database host; doc/pitr.md).
      new CfnOutput(this, `ArchiveCommand${id}`, { value: `${env} opsctl --config /etc/opsctl/ops.config.json wal push %p --name ${db.name} --resident`, description: `archive_command for ${db.name}` });
      new CfnOutput(this, `RestoreCommand${id}`, { value: `${env} opsctl --config /etc/opsctl/ops.config.json wal fetch %f %p --name ${db.name}`, description: `restore_command for ${db.name} (a restore or standby of it)` });
    }
    for (const [name, fn] of Object.entries(this.functions)) new CfnOutput(this, `${name[0]!.toUpperCase()}${name.slice(1)}Function`, { value: fn.functionName });
    new CfnOutput(this, 'ClusterArn', { value: this.tasks.cluster.clusterArn });
    // For `opsctl … --remote <stack>`: which task definition is which job, and where tasks run.
    new CfnOutput(this, 'JobTaskDefinitions', { value: this.toJsonString(Object.fromEntries(this.tasks.all.map((t) => [t.job, t.definition.taskDefinitionArn]))) });
    new CfnOutput(this, 'JobSubnets', { value: vpc.selectSubnets(subnets).subnetIds.join(',') });
    new CfnOutput(this, 'JobSecurityGroups', { value: jobsSg.securityGroupId });
    new CfnOutput(this, 'AlarmTopicArn', { value: topic.topicArn });
    new CfnOutput(this, 'DashboardName', { value: dashboard.dashboard.dashboardName });

    acknowledgeNagFindings(this, { bucket: this.bucket, cluster: this.tasks.cluster, databases: ops.postgres.map((d) => d.name), replicaBucketArn: stage.bucket.replication?.destinationBucketArn });
  }

  private vpc({ stage }: LoadedStage): ec2.IVpc {
    const v = stage.vpc;
    if (v.mode === 'import') {
      const imported = ec2.Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: v.vpcId, availabilityZones: v.availabilityZones, privateSubnetIds: v.privateSubnetIds, ...(v.privateRouteTableIds ? { privateSubnetRouteTableIds: v.privateRouteTableIds } : {}) });
      // Backups stream to S3 without paying NAT data processing, when the route tables are known.
      if (v.privateRouteTableIds) new ec2.GatewayVpcEndpoint(this, 'S3Endpoint', { vpc: imported, service: ec2.GatewayVpcEndpointAwsService.S3, subnets: [{ subnets: imported.privateSubnets }] });
      return imported;
    }
    if (v.mode === 'lookup') return ec2.Vpc.fromLookup(this, 'Vpc', { vpcId: v.vpcId });
    const flowLogs = new logs.LogGroup(this, 'VpcFlowLogs', logGroupProps(stage, `/ops-automation/${stage.stackName}/vpc-flow-logs`));
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: v.maxAzs,
      natGateways: v.natGateways,
      // No NAT gateway: the jobs' subnets are isolated and reach AWS through endpoints.
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'jobs', subnetType: jobsSubnetType(stage), cidrMask: 22 },
      ],
      flowLogs: { all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.REJECT } },
    });
    // Backups stream to S3 without paying NAT data processing.
    vpc.addGatewayEndpoint('S3Endpoint', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    return vpc;
  }

  private replication({ stage }: LoadedStage): Partial<s3.BucketProps> {
    const r = stage.bucket.replication;
    if (!r) return {};
    const destination = s3.Bucket.fromBucketAttributes(this, 'ReplicaBucket', { bucketArn: r.destinationBucketArn, account: r.destinationAccount });
    const destinationKey = kms.Key.fromKeyArn(this, 'ReplicaKey', r.destinationKmsKeyArn);
    return {
      replicationRules: [
        {
          id: REPLICATION_RULE_ID,
          destination,
          // Replication metrics (OperationsFailedReplication, latency, backlog) for the alarm below.
          metrics: s3.ReplicationTimeValue.FIFTEEN_MINUTES,
          priority: 0,
          kmsKey: destinationKey,
          sseKmsEncryptedObjects: true,
          storageClass: s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
          accessControlTransition: r.destinationAccount ? true : undefined,
          deleteMarkerReplication: false,
        },
      ],
    };
  }

  private pgRestoreLayer({ stage }: LoadedStage): lambda.ILayerVersion {
    const l = stage.pgRestoreLayer;
    if ('arn' in l) return lambda.LayerVersion.fromLayerVersionArn(this, 'PgRestoreLayer', l.arn);
    const layerDir = path.join(REPO_ROOT, 'lambdas', 'pg-restore-layer');
    const code =
      'asset' in l
        ? lambda.Code.fromAsset(path.resolve(REPO_ROOT, l.asset))
        : lambda.Code.fromAsset(layerDir, {
            bundling: {
              image: LAMBDA_RUNTIME.bundlingImage,
              local: {
                // The recipe's last stage is FROM scratch, so it is exported, not run.
                tryBundle(outputDir: string) {
                  const r = spawnSync('docker', ['build', '--platform', 'linux/arm64', '--build-arg', `PG_MAJOR=${PG_MAJOR}`, '--output', `type=local,dest=${outputDir}`, layerDir], { stdio: 'inherit' });
                  return r.status === 0;
                },
              },
            },
          });
    return new lambda.LayerVersion(this, 'PgRestoreLayer', {
      code,
      compatibleArchitectures: [lambda.Architecture.ARM_64],
      compatibleRuntimes: [LAMBDA_RUNTIME],
      description: 'pg_restore and zstd with their shared libraries for Amazon Linux 2023 (lambdas/pg-restore-layer)',
    });
  }

  private grantRemoteWrite(role: iam.IGrantable, workspaceArn: string): void {
    role.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['aps:RemoteWrite'], resources: [workspaceArn] }));
  }

  /** RunTask on exactly these task definitions in this cluster, and PassRole on exactly their roles, to ECS only. */
  private grantRunTasks(fn: lambda.IFunction, definitions: import('aws-cdk-lib/aws-ecs').FargateTaskDefinition[]): void {
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['ecs:RunTask'],
        resources: definitions.map((d) => d.taskDefinitionArn),
        conditions: { ArnEquals: { 'ecs:cluster': this.tasks.cluster.clusterArn } },
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: definitions.flatMap((d) => [d.taskRole.roleArn, d.obtainExecutionRole().roleArn]),
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['ecs:TagResource'], resources: [`arn:${this.partition}:ecs:${this.region}:${this.account}:task/*`], conditions: { StringEquals: { 'ecs:CreateAction': 'RunTask' } } }));
  }
}

import { Duration, Stack } from 'aws-cdk-lib';
import { PG_MAJOR, PG_SERVER_MAJORS, assertPgMajors } from './versions.js';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as ssm from 'aws-cdk-lib/aws-ssm';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import { Construct } from 'constructs';
import type { OpsConfig } from '../src/config/load.js';
import { prometheusSecretEnv } from '../src/metrics/create.js';
import { pgPasswordEnv, redisPasswordEnv } from '../src/config/secret-env.js';
import { REPO_ROOT } from './job-function.js';
import { grantRepository, type RepositoryAccess } from './repository-grants.js';
import { logGroupProps } from './secure-defaults.js';
import type { Stage } from './stage-config.js';

export const CONTAINER_NAME = 'opsctl';
export const TASK_LOG_STREAM_PREFIX = 'ops';

export interface JobTasksProps {
  stage: Stage;
  ops: OpsConfig;
  vpc: ec2.IVpc;
  subnets: ec2.SubnetSelection;
  securityGroup: ec2.ISecurityGroup;
  bucket: s3.IBucket;
  key: kms.IKey;
  /** Key prefix of the repository inside the bucket, e.g. `ops/`. */
  repoPrefix: string;
  repositoryUrl: string;
  configParameter: ssm.IStringParameter;
  metricsEnvironment: Record<string, string>;
}

/** One scheduled or manual job: a task definition whose container runs one opsctl command. */
export interface JobTask {
  id: string;
  /** The `opsctl run` job name, with the target: `backup-postgres:callcenter`, `prune`. */
  job: string;
  definition: ecs.FargateTaskDefinition;
  command: string[];
}

/**
 * The ECS cluster and one Fargate task definition per job, all from the one image in
 * containers/ (built at deploy; synth needs no Docker). A task definition's command is
 * fixed, so RunTask rights on it are rights to exactly that job.
 */
export class JobTasks extends Construct {
  readonly cluster: ecs.Cluster;
  readonly logGroup: logs.LogGroup;
  readonly backups: JobTask[] = [];
  readonly drills: JobTask[] = [];
  /** `wal receive` of each database with pitr.receive.enabled: a service, never scheduled. */
  readonly receivers: { task: JobTask; service: ecs.FargateService }[] = [];
  readonly restore: JobTask;
  readonly verify: JobTask;
  readonly prune: JobTask;
  readonly drillAll: JobTask;
  private readonly image: ecs.ContainerImage;
  private readonly secrets = new Map<string, secretsmanager.ISecret>();

  constructor(scope: Construct, id: string, private readonly props: JobTasksProps) {
    super(scope, id);
    const { stage, ops } = props;
    this.cluster = new ecs.Cluster(this, 'Cluster', { vpc: props.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    this.logGroup = new logs.LogGroup(this, 'Logs', logGroupProps(stage, `/ops-automation/${stage.stackName}/jobs`));
    assertPgMajors(REPO_ROOT);
    this.image = ecs.ContainerImage.fromAsset(REPO_ROOT, {
      file: 'containers/backup/Dockerfile',
      buildArgs: { PG_MAJOR: String(PG_MAJOR), PG_SERVER_MAJORS: PG_SERVER_MAJORS.join(' ') },
      platform: stage.tasks.architecture === 'ARM64' ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
    });

    for (const db of ops.postgres) {
      const backup = this.task(`BackupPostgres-${db.name}`, `backup-postgres:${db.name}`, ['backup', 'postgres', '--name', db.name], 'backup');
      this.withDatabaseSecret(backup, db.name, db.passwordSecretArn);
      this.grant(backup, `postgres/${db.name}/`, { read: true, write: true, delete: true });
      // Its prefix holds the base backups too (postgres/<db>/base/): the nightly dump and its
      // retention never write or delete there, and may not.
      this.deny(backup, `postgres/${db.name}/base/`, ['s3:PutObject', 's3:DeleteObject']);
      this.backups.push(backup);

      // The drill reads the backups and writes only its own records: never a payload or a manifest.
      const drill = this.task(`DrillPostgres-${db.name}`, `drill:${db.name}`, ['drill', 'postgres', '--name', db.name], 'restore');
      this.withDatabaseSecret(drill, db.name, db.passwordSecretArn);
      this.grant(drill, `postgres/${db.name}/`, { read: true, writePattern: '*/drill.json' });
      this.grant(drill, `postgres/${db.name}/`, { writePattern: '*/verification.json' });
      this.drills.push(drill);

      if (db.pitr.enabled) {
        // A base backup over the replication protocol: no file access on the database host.
        const base = this.task(`BackupPostgresBase-${db.name}`, `backup-postgres-base:${db.name}`, ['backup', 'postgres', '--base', '--name', db.name], 'backup');
        this.withDatabaseSecret(base, db.name, db.passwordSecretArn);
        this.grant(base, `postgres/${db.name}/base/`, { read: true, write: true, delete: true });
        this.grant(base, `wal/${db.name}/`, { read: true });
        this.backups.push(base);
        // The PITR drill starts a scratch cluster inside the task (the image ships the server).
        const pitr = this.task(`DrillPitr-${db.name}`, `drill-pitr:${db.name}`, ['drill', 'postgres', '--pitr', '--name', db.name], 'restore');
        this.withDatabaseSecret(pitr, db.name, db.passwordSecretArn);
        this.grant(pitr, `postgres/${db.name}/base/`, { read: true, writePattern: '*/drill.json' });
        this.grant(pitr, `postgres/${db.name}/base/`, { writePattern: '*/verification.json' });
        this.grant(pitr, `wal/${db.name}/`, { read: true });
        this.drills.push(pitr);
      }
      if (db.pitr.enabled && db.pitr.receive.enabled) this.receiver(db.name, db.passwordSecretArn);
    }
    for (const r of ops.redis) {
      const backup = this.task(`BackupRedis-${r.name}`, `backup-redis:${r.name}`, ['backup', 'redis', '--name', r.name], 'backup');
      this.withRedisSecret(backup, r.name, r.passwordSecretArn);
      this.grant(backup, `redis/${r.name}/`, { read: true, write: true, delete: true });
      this.backups.push(backup);

      // The drill starts its own redis-server inside the task (the image ships one): it needs the backups, not the source.
      const drill = this.task(`DrillRedis-${r.name}`, `drill-redis:${r.name}`, ['drill', 'redis', '--name', r.name], 'restore');
      this.grant(drill, `redis/${r.name}/`, { read: true, writePattern: '*/drill.json' });
      this.grant(drill, `redis/${r.name}/`, { writePattern: '*/verification.json' });
      this.drills.push(drill);
    }
    for (const k of ops.knowledge) {
      const backup = this.task(`BackupKnowledge-${k.name}`, `backup-knowledge:${k.name}`, ['backup', 'knowledge', '--name', k.name], 'backup');
      this.withKnowledgeSource(backup, k.name, k.path ?? '', true);
      this.grant(backup, `knowledge/${k.name}/`, { read: true, write: true, delete: true });
      this.backups.push(backup);

      const drill = this.task(`DrillKnowledge-${k.name}`, `drill-knowledge:${k.name}`, ['drill', 'knowledge', '--name', k.name], 'restore');
      this.grant(drill, `knowledge/${k.name}/`, { read: true, writePattern: '*/drill.json' });
      this.grant(drill, `knowledge/${k.name}/`, { writePattern: '*/verification.json' });
      this.drills.push(drill);
    }

    // The quarterly whole-system drill: every component's backups, the databases' secrets
    // (its PostgreSQL drills restore into scratch databases beside the live ones).
    this.drillAll = this.task('DrillAll', 'drill-all', ['drill', 'all'], 'restore');
    for (const db of ops.postgres) this.withDatabaseSecret(this.drillAll, db.name, db.passwordSecretArn);
    this.grant(this.drillAll, '', { read: true, writePattern: '*/drill.json' });
    this.grant(this.drillAll, '', { writePattern: '*/verification.json' });
    this.drills.push(this.drillAll);

    // Manual jobs: the restore Lambda overrides the command; verify/prune run as scheduled or by hand.
    this.restore = this.task('Restore', 'restore', ['--help'], 'restore');
    for (const db of ops.postgres) this.withDatabaseSecret(this.restore, db.name, db.passwordSecretArn);
    for (const r of ops.redis) this.withRedisSecret(this.restore, r.name, r.passwordSecretArn);
    for (const k of ops.knowledge) this.withKnowledgeSource(this.restore, k.name, k.path ?? '', false);
    this.grant(this.restore, '', { read: true });

    this.verify = this.task('Verify', 'verify', ['verify', 'postgres', 'latest'], 'restore');
    this.grant(this.verify, '', { read: true, writePattern: '*/verification.json' });

    this.prune = this.task('Prune', 'prune', ['prune'], 'backup');
    this.grant(this.prune, '', { read: true, delete: true, cleanup: true });
  }

  /**
   * One Fargate service per streamed database: desired count 1, restarted by ECS when it
   * stops, and never two at once (maximum 100 %: the old task stops before a new one starts,
   * since two receivers cannot share the slot). SIGTERM then the 120 s stop timeout: the
   * receiver uploads what it received and exits 0. The slot is not created here: an operator
   * creates it once (doc/pitr.md), so a slot never appears on a primary unannounced.
   */
  private receiver(name: string, passwordSecretArn: string | undefined): void {
    const task = this.task(`WalReceive-${name}`, `wal-receive:${name}`, ['wal', 'receive', '--name', name, '--dir', '/tmp/ops-wal-receive'], 'backup', { cpu: 256, memoryMiB: 512 });
    this.withDatabaseSecret(task, name, passwordSecretArn);
    // Its database's WAL: list and read (the cluster record, a segment already archived),
    // create only (If-None-Match, as the host), and delete only the chunks of archived segments.
    this.grant(task, `wal/${name}/`, { read: true, write: true });
    this.grant(task, `wal/${name}/chunks/`, { delete: true });
    task.definition.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ effect: iam.Effect.DENY, actions: ['s3:PutObject'], resources: [`${this.props.bucket.bucketArn}/${this.props.repoPrefix}wal/${name}/*`], conditions: { Null: { 's3:if-none-match': 'true' } } }),
    );
    const service = new ecs.FargateService(this, `WalReceiveService-${name}`, {
      cluster: this.cluster,
      taskDefinition: task.definition,
      desiredCount: 1,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      vpcSubnets: this.props.subnets,
      securityGroups: [this.props.securityGroup],
      assignPublicIp: false,
      circuitBreaker: { enable: true, rollback: false },
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });
    this.receivers.push({ task, service });
  }

  get all(): JobTask[] {
    return [...this.backups, ...this.drills, this.restore, this.verify, this.prune];
  }

  /** Every task definition the restore path may start (restore and drills). */
  get restoreDefinitions(): ecs.FargateTaskDefinition[] {
    return [this.restore.definition, ...this.drills.map((d) => d.definition)];
  }

  private grant(task: JobTask, subPrefix: string, access: RepositoryAccess): void {
    grantRepository(task.definition.taskRole, this.props.bucket, this.props.key, `${this.props.repoPrefix}${subPrefix}`, access);
  }

  /** An explicit deny under a sub-prefix that a wider grant of the same task covers. */
  private deny(task: JobTask, subPrefix: string, actions: string[]): void {
    task.definition.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({ effect: iam.Effect.DENY, actions, resources: [`${this.props.bucket.bucketArn}/${this.props.repoPrefix}${subPrefix}*`] }));
  }

  private task(id: string, job: string, command: string[], sizeName: 'backup' | 'restore', override?: { cpu: number; memoryMiB: number }): JobTask {
    const { stage } = this.props;
    const size = { ...stage.tasks[sizeName], ...override };
    const definition = new ecs.FargateTaskDefinition(this, id, {
      // `aws ecs list-task-definitions --family-prefix <stackName>` lists every job.
      family: `${stage.stackName}-${id}`,
      cpu: size.cpu,
      memoryLimitMiB: size.memoryMiB,
      ephemeralStorageGiB: size.ephemeralStorageGiB,
      runtimePlatform: {
        cpuArchitecture: stage.tasks.architecture === 'ARM64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    definition.addContainer(CONTAINER_NAME, {
      image: this.image,
      command: ['--json', ...command],
      essential: true,
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: TASK_LOG_STREAM_PREFIX, mode: ecs.AwsLogDriverMode.NON_BLOCKING }),
      environment: { OPS_REPOSITORY_URL: this.props.repositoryUrl, AWS_REGION: stage.region, ...this.props.metricsEnvironment },
      secrets: { OPS_CONFIG_JSON: ecs.Secret.fromSsmParameter(this.props.configParameter), ...this.prometheusSecret() },
      stopTimeout: Duration.seconds(120),
    });
    return { id, job, definition, command: ['--json', ...command] };
  }

  private prometheusSecret(): Record<string, ecs.Secret> {
    const arn = this.props.stage.prometheus.secretArn;
    const envName = prometheusSecretEnv(this.props.ops.metrics.prometheus.auth);
    if (!arn || !envName) return {};
    return { [envName]: ecs.Secret.fromSecretsManager(this.importSecret(arn)) };
  }

  /** Each database's password in its own variable (OPS_PG_PASSWORD_<NAME>): never in the config or the command, never another database's. */
  private withDatabaseSecret(task: JobTask, name: string, arn: string | undefined): void {
    if (!arn) return;
    task.definition.defaultContainer!.addSecret(pgPasswordEnv(name), ecs.Secret.fromSecretsManager(this.importSecret(arn), 'password'));
  }

  private withRedisSecret(task: JobTask, name: string, arn: string | undefined): void {
    if (!arn) return;
    task.definition.defaultContainer!.addSecret(redisPasswordEnv(name), ecs.Secret.fromSecretsManager(this.importSecret(arn), 'password'));
  }

  /** One import per secret, however many tasks use it. */
  private importSecret(arn: string): secretsmanager.ISecret {
    let secret = this.secrets.get(arn);
    if (!secret) {
      secret = secretsmanager.Secret.fromSecretCompleteArn(this, `Secret${this.secrets.size}`, arn);
      this.secrets.set(arn, secret);
    }
    return secret;
  }

  /** EFS read-only for backups, read-write for restore; an S3 source is read with the task role. */
  private withKnowledgeSource(task: JobTask, name: string, sourcePath: string, readOnly: boolean): void {
    if (sourcePath.startsWith('s3://')) {
      const [bucketName, ...rest] = sourcePath.slice('s3://'.length).split('/');
      const keyPrefix = rest.join('/');
      const role = task.definition.taskRole;
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [`arn:aws:s3:::${bucketName}`], conditions: keyPrefix ? { StringLike: { 's3:prefix': [`${keyPrefix}*`] } } : undefined }));
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: readOnly ? ['s3:GetObject'] : ['s3:GetObject', 's3:PutObject'], resources: [`arn:aws:s3:::${bucketName}/${keyPrefix}*`] }));
      return;
    }
    const fs = this.props.stage.knowledgeFileSystems[name];
    if (!fs) return;
    const volume = `knowledge-${name}`;
    task.definition.addVolume({
      name: volume,
      efsVolumeConfiguration: {
        fileSystemId: fs.fileSystemId,
        transitEncryption: 'ENABLED',
        rootDirectory: fs.accessPointId ? undefined : fs.rootDirectory,
        authorizationConfig: { iam: 'ENABLED', accessPointId: fs.accessPointId },
      },
    });
    task.definition.defaultContainer!.addMountPoints({ sourceVolume: volume, containerPath: sourcePath, readOnly });
    // The stack's own account (a token when the stage names none): never a wildcard account.
    const fsArn = Stack.of(this).formatArn({ service: 'elasticfilesystem', region: this.props.stage.region, resource: 'file-system', resourceName: fs.fileSystemId });
    task.definition.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: readOnly ? ['elasticfilesystem:ClientMount'] : ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'], resources: [fsArn] }),
    );
    // Backup and restore tasks both mount the store: one ingress rule per file system.
    if (fs.securityGroupId && !this.node.tryFindChild(`EfsIngress-${name}`)) {
      new ec2.CfnSecurityGroupIngress(this, `EfsIngress-${name}`, {
        groupId: fs.securityGroupId,
        ipProtocol: 'tcp',
        fromPort: 2049,
        toPort: 2049,
        sourceSecurityGroupId: this.props.securityGroup.securityGroupId,
        description: `NFS from ops-automation jobs (${name})`,
      });
    }
  }
}

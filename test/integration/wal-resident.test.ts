import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPSCTL_SH, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { sqlOn, startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { postgresGid, postgresUid, waitArchived } from '../helpers/pitr.js';
import { freePort } from '../helpers/prometheus.js';

/** An OPSCTL_NODE that notes each start in `calls` (one line each) and runs this Node: how often archive_command paid for Node. */
async function nodeCounter(work: string): Promise<{ calls: string; wrapper: string }> {
  const calls = path.join(work, 'node-calls');
  await writeFile(calls, '');
  await chown(calls, postgresUid, postgresGid);
  const wrapper = path.join(work, 'node');
  await writeFile(wrapper, `#!/bin/sh\necho "$*" >> ${calls}\nexec ${process.execPath} "$@"\n`, { mode: 0o755 });
  return { calls, wrapper };
}

/**
 * archive_command = 'opsctl wal push %p --name N --resident' through the shipped shell
 * script: the first call runs Node and starts a resident pusher; every later call hands its
 * file to the resident and waits for the record that the file is durable in the
 * repository. Node's starts are counted by an OPSCTL_NODE wrapper (the resident itself is
 * started without it). Faults from outside: the resident SIGKILLed, the repository
 * refusing writes. Exit 0 must keep meaning "durable in the repository" throughout.
 */
describe('wal push --resident: one archive_command per segment without a Node start each (real cluster, bin/opsctl as shipped)', { timeout: 300_000 }, () => {
  let server: TestPostgresServer;
  let work: string;
  let cfg: string;
  let spool: string;
  let calls: string;
  const repoWal = () => path.join(work, 'repo', 'wal', 'main');
  const nodeCalls = async () => (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  const residentPid = async () => Number((await readFile(path.join(spool, '.resident'), 'utf8').catch(() => '')).split(' ')[0]) || undefined;
  // Not a zombie: here nobody reaps a killed resident (PID 1 of this machine does not), and kill(pid, 0) succeeds on one.
  const alive = (pid: number | undefined) => {
    if (!pid) return false;
    const stat = (() => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        return '';
      }
    })();
    const state = stat.slice(stat.lastIndexOf(') ') + 2, stat.lastIndexOf(') ') + 3);
    return state !== '' && state !== 'Z' && state !== 'X';
  };
  const failed = async () => Number((await sqlOn<{ n: string }>(server.port, 'select failed_count::text as n from pg_stat_archiver'))[0]!.n);
  /** `n` segments with rows in them, each switched out; the names, in order. */
  const segments = async (n: number, tag: number) => {
    const names: string[] = [];
    for (let i = 0; i < n; i += 1) {
      await sqlOn(server.port, `insert into t select ${tag}, g, repeat('x', 200) from generate_series(1, 2000) g`);
      names.push((await sqlOn<{ f: string }>(server.port, 'select pg_walfile_name(pg_current_wal_lsn()) as f'))[0]!.f);
      await sqlOn(server.port, 'select pg_switch_wal()');
    }
    return names;
  };
  /** Every named segment back from the archive, byte for byte what pg_wal holds (wal_keep_size keeps them there). */
  const sameAsPgWal = async (names: string[]) => {
    for (const f of names) {
      const dest = path.join(work, `fetched-${f}`);
      const r = await runCli(['--config', cfg, 'wal', 'fetch', f, dest, '--name', 'main', '--ahead', '0', '--spool', path.join(work, 'fetch-spool')]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      assert.equal(sha(await readFile(dest)), sha(await readFile(path.join(server.dir, 'data', 'pg_wal', f))), f);
      await rm(dest, { force: true });
    }
  };

  before(async () => {
    work = await tempDir('ops-wal-resident-');
    await chmod(work, 0o755);
    await mkdir(path.join(work, 'repo'));
    await chown(path.join(work, 'repo'), postgresUid, postgresGid);
    // Not made here: the first push makes it (a resident for a spool that does not exist yet was never started).
    await mkdir(path.join(work, 'spools'), { mode: 0o755 });
    await chown(path.join(work, 'spools'), postgresUid, postgresGid);
    spool = path.join(work, 'spools', 'main');
    const counted = await nodeCounter(work);
    calls = counted.calls;
    const wrapper = counted.wrapper;
    const port = await freePort();
    cfg = await writeConfig(work, { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'main', url: `postgresql://postgres@127.0.0.1:${port}/postgres`, pitr: { enabled: true } }] });
    await chmod(cfg, 0o644);
    server = await startPostgresServer({
      port,
      settings: {
        wal_level: 'replica',
        archive_mode: 'on',
        wal_keep_size: '2GB',
        archive_command: `env OPSCTL_NODE=${wrapper} ${OPSCTL_SH} --config ${cfg} wal push %p --name main --spool ${spool} --resident`,
      },
    });
    await sqlOn(server.port, 'create table t (tag int, i int, v text)');
  });
  after(async () => {
    const pid = await residentPid().catch(() => undefined);
    await server?.remove();
    if (pid && alive(pid)) process.kill(pid, 'SIGTERM');
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('20 segments: all archived, each byte for byte pg_wal\'s, the archiver never failed, Node started for at most the first 3 calls', async () => {
    const names = await segments(20, 1);
    await waitArchived(server.port);
    assert.equal(await failed(), 0);
    const pid = await residentPid();
    assert.ok(alive(pid), 'a resident pusher serves the spool');
    assert.match(await readFile(`/proc/${pid}/cmdline`, 'utf8'), /wal\0push\0--serve/);
    const n = await nodeCalls();
    assert.ok(n >= 1 && n <= 3, `Node started ${n} times for ${names.length + 1} calls`);
    await sameAsPgWal(names);
    const s = await runCli(['--config', cfg, '--json', 'wal', 'status', '--name', 'main']);
    assert.deepEqual((JSON.parse(s.stdout) as { problems: string[] }).problems, []);
  });

  it('files nobody marked .ready (pushed by hand, as postgres): each handed to the resident through req/ and answered without Node; exit 0 only once the archive holds it', async () => {
    const names = (await readdir(path.join(server.dir, 'data', 'pg_wal'))).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort().slice(0, 4);
    const scratch = path.join(work, 'by-hand');
    await mkdir(scratch, { mode: 0o755 });
    for (const f of names) {
      await copyFile(path.join(server.dir, 'data', 'pg_wal', f), path.join(scratch, f));
      await chown(path.join(scratch, f), postgresUid, postgresGid);
    }
    const wrapper = path.join(work, 'node');
    const before = await nodeCalls();
    for (const f of names) {
      // Not in the archive when the call starts: exit 0 must mean the resident put it there.
      await rm(path.join(repoWal(), `${f}.zst`));
      const r = spawnSync('runuser', ['-u', 'postgres', '--', 'env', `OPSCTL_NODE=${wrapper}`, OPSCTL_SH, '--config', cfg, 'wal', 'push', path.join(scratch, f), '--name', 'main', '--spool', spool, '--resident'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.equal(r.stdout, `${f}: spooled\n`, 'answered by the shell from the resident\'s record');
      assert.ok(existsSync(path.join(repoWal(), `${f}.zst`)), `${f} is in the archive when the call exits 0`);
    }
    await sameAsPgWal(names);
    assert.equal((await nodeCalls()) - before, 0, 'no Node start for them');
  });

  it('the resident SIGKILLed (left a zombie: nothing reaps it on this machine, and kill -0 would call it alive): the next call goes to Node (archive_command does not fail), which starts another; every segment lands', async () => {
    const before = await nodeCalls();
    const first = (await residentPid())!;
    process.kill(first, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const names = await segments(6, 2);
    await waitArchived(server.port);
    assert.equal(await failed(), 0, 'no archive_command failure');
    const second = await residentPid();
    assert.ok(second !== first && alive(second), `another resident serves (was ${first}, now ${second})`);
    const n = (await nodeCalls()) - before;
    assert.ok(n >= 1 && n <= 3, `Node started ${n} times for 6 segments after the kill`);
    await sameAsPgWal(names);
  });

  it('the repository refusing writes: the resident\'s failure sends the call to Node, which fails it (PostgreSQL keeps the file, retries); writable again, every segment lands', async () => {
    const failedBefore = await failed();
    const nodeBefore = await nodeCalls();
    await chmod(repoWal(), 0o500);
    let names: string[] = [];
    try {
      names = await segments(1, 3);
      const deadline = Date.now() + 30_000;
      while ((await failed()) === failedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok((await failed()) > failedBefore, 'archive_command failed while the repository refused writes');
      assert.ok((await nodeCalls()) > nodeBefore, 'the failing call was decided by Node, not answered by the shell');
      assert.match(await readFile(path.join(spool, 'resident.log'), 'utf8'), /not pushed: .*EACCES|permission denied/i);
    } finally {
      await chmod(repoWal(), 0o700);
    }
    await waitArchived(server.port);
    await sameAsPgWal(names);
    const s = await runCli(['--config', cfg, '--json', 'wal', 'status', '--name', 'main']);
    assert.deepEqual((JSON.parse(s.stdout) as { problems: string[] }).problems, []);
  });
});

/**
 * The stack's ArchiveCommand output as it is (the region and repository in an env prefix, no
 * --spool: the default one under TMPDIR, keyed by the user's uid, computed alike by the shell
 * and by Node; --resident) against an S3 API over HTTP (s3rver): the resident pushes with the
 * credentials and endpoint it inherited from the first call.
 */
describe('wal push --resident as the stack\'s ArchiveCommand gives it: default spool, S3 repository (s3rver), bin/opsctl as shipped', { timeout: 300_000 }, () => {
  let server: TestPostgresServer;
  let s3: Awaited<ReturnType<typeof import('../helpers/s3.js').startLocalS3>>;
  let work: string;
  let cfg: string;
  let calls: string;
  let spool: string;

  before(async () => {
    const { startLocalS3 } = await import('../helpers/s3.js');
    s3 = await startLocalS3('ops-resident');
    work = await tempDir('ops-wal-resident-s3-');
    await chmod(work, 0o755);
    const tmp = path.join(work, 'tmp');
    await mkdir(tmp, { mode: 0o700 });
    await chown(tmp, postgresUid, postgresGid);
    spool = path.join(tmp, `ops-wal-spool-${postgresUid}`, 'main');
    const counted = await nodeCounter(work);
    calls = counted.calls;
    const wrapper = counted.wrapper;
    const port = await freePort();
    const repository = `s3://${s3.bucket}/ops`;
    cfg = await writeConfig(work, { repository: { url: repository }, postgres: [{ name: 'main', url: `postgresql://postgres@127.0.0.1:${port}/postgres`, pitr: { enabled: true } }] });
    await chmod(cfg, 0o644);
    const env = Object.entries({ ...s3.env, OPS_REPOSITORY_URL: repository, TMPDIR: tmp, OPSCTL_NODE: wrapper }).map(([k, v]) => `${k}=${v}`).join(' ');
    server = await startPostgresServer({
      port,
      settings: { wal_level: 'replica', archive_mode: 'on', wal_keep_size: '1GB', archive_command: `${env} ${OPSCTL_SH} --config ${cfg} wal push %p --name main --resident` },
    });
    await sqlOn(server.port, 'create table t (i int, v text)');
  });
  after(async () => {
    const pid = Number((await readFile(path.join(spool, '.resident'), 'utf8').catch(() => '')).split(' ')[0]);
    await server?.remove();
    if (pid > 0) process.kill(pid, 'SIGTERM');
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('12 segments in the bucket, each byte for byte pg_wal\'s; the archiver never failed; Node started for at most the first 3 calls', async () => {
    const names: string[] = [];
    for (let i = 0; i < 12; i += 1) {
      await sqlOn(server.port, `insert into t select g, repeat('y', 200) from generate_series(1, 2000) g`);
      names.push((await sqlOn<{ f: string }>(server.port, 'select pg_walfile_name(pg_current_wal_lsn()) as f'))[0]!.f);
      await sqlOn(server.port, 'select pg_switch_wal()');
    }
    await waitArchived(server.port);
    assert.equal(Number((await sqlOn<{ n: string }>(server.port, 'select failed_count::text as n from pg_stat_archiver'))[0]!.n), 0);
    const n = (await readFile(calls, 'utf8')).split('\n').filter(Boolean).length;
    assert.ok(n >= 1 && n <= 3, `Node started ${n} times for ${names.length + 1} calls (the shell and Node must agree on the default spool)`);
    const pid = Number((await readFile(path.join(spool, '.resident'), 'utf8')).split(' ')[0]);
    assert.match(await readFile(`/proc/${pid}/cmdline`, 'utf8'), /wal\0push\0--serve/, 'a resident serves the default spool');
    const keys = await s3.keys('ops/wal/main/');
    for (const f of names) {
      assert.ok(keys.includes(`ops/wal/main/${f}.zst`), `${f} in the bucket`);
      const dest = path.join(work, `fetched-${f}`);
      const r = await runCli(['--config', cfg, 'wal', 'fetch', f, dest, '--name', 'main', '--ahead', '0', '--spool', path.join(work, 'fetch-spool')], { env: { ...s3.env, OPS_REPOSITORY_URL: `s3://${s3.bucket}/ops` } });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      assert.equal(sha(await readFile(dest)), sha(await readFile(path.join(server.dir, 'data', 'pg_wal', f))), f);
    }
  });
});

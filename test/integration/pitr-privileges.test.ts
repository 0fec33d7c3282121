import assert from 'node:assert/strict';
import { chmod, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, writeConfig } from '../helpers/cli.js';
import { sqlOn as sql, type TestPostgresServer } from '../helpers/pg-server.js';
import { startArchivingCluster, waitArchived } from '../helpers/pitr.js';

/**
 * The role the jobs connect as, as production has it: LOGIN REPLICATION, not superuser.
 * pg_create_restore_point() and pg_switch_wal() are superuser-only by default, so the PITR
 * drill's first run failed with "permission denied" while every check passed.
 */
describe('point-in-time recovery as a non-superuser role: the missing grants named before they are needed (a real cluster)', () => {
  let server: TestPostgresServer;
  let work: string;
  let asRole: (role: string) => Promise<string>;

  before(async () => {
    let primaryCfg: string;
    ({ server, work, cfg: primaryCfg } = await startArchivingCluster('ops-pitr-grants-'));
    void primaryCfg;
    await sql(server.port, 'create table t (id int primary key)');
    await sql(server.port, 'insert into t select generate_series(1, 50)');
    await sql(server.port, 'create role ops_repl login replication; create role ops_plain login; grant pg_read_all_data to ops_repl');
    asRole = async (role: string) => {
      const dir = path.join(work, `cfg-${role}`);
      await mkdir(dir, { recursive: true });
      await chmod(dir, 0o755);
      const file = await writeConfig(dir, { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'main', url: `postgresql://${role}@127.0.0.1:${server.port}/postgres`, pitr: { enabled: true } }] });
      await chmod(file, 0o644);
      return file;
    };
  });
  after(async () => {
    await server?.remove();
    await rm(work, { recursive: true, force: true });
  });

  it('healthcheck: DEGRADED (exit 1) naming both GRANT statements; OK once granted', async () => {
    const cfg = await asRole('ops_repl');
    const r = await runCli(['--config', cfg, 'healthcheck']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /lacks EXECUTE on pg_create_restore_point\(text\) \(needed by the point-in-time drill\): GRANT EXECUTE ON FUNCTION pg_catalog\.pg_create_restore_point\(text\) TO "ops_repl"/);
    assert.match(r.stdout, /GRANT EXECUTE ON FUNCTION pg_catalog\.pg_switch_wal\(\) TO "ops_repl"/);
    assert.doesNotMatch(r.stdout, /REPLICATION attribute/);
  });

  it('a base backup as a role without REPLICATION is refused at once, naming ALTER ROLE; with it but without the drill\'s grants it runs and warns', async () => {
    const plain = await runCli(['--config', await asRole('ops_plain'), 'backup', 'postgres', '--base']);
    assert.equal(plain.code, 2, plain.stdout + plain.stderr);
    assert.match(plain.stdout + plain.stderr, /lacks the REPLICATION attribute \(needed by base backups \(pg_basebackup\)\): ALTER ROLE "ops_plain" REPLICATION/);
    const repl = await runCli(['--config', await asRole('ops_repl'), 'backup', 'postgres', '--base']);
    assert.equal(repl.code, 0, repl.stdout + repl.stderr);
    assert.match(repl.stderr, /base backup of main: the role lacks EXECUTE on pg_create_restore_point\(text\)/);
  });

  it('a base backup of a server whose major is not the configured pitr.serverMajor is refused, naming both', async () => {
    const [{ m }] = (await sql<{ m: string }>(server.port, `select (current_setting('server_version_num')::int / 10000)::text as m`)) as [{ m: string }];
    const dir = path.join(work, 'cfg-major');
    await mkdir(dir, { recursive: true });
    const cfg = await writeConfig(dir, { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'main', url: `postgresql://postgres@127.0.0.1:${server.port}/postgres`, pitr: { enabled: true, serverMajor: Number(m) + 1 } }] });
    const r = await runCli(['--config', cfg, 'backup', 'postgres', '--base']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`main is PostgreSQL ${m} but its pitr.serverMajor says ${Number(m) + 1}: set pitr.serverMajor to ${m}`));
  });

  it('the drill as that role: fails on "permission denied" without the grants, passes once exactly the statements healthcheck printed are run', async () => {
    const cfg = await asRole('ops_repl');
    await waitArchived(server.port);
    const denied = await runCli(['--config', cfg, '--json', 'drill', 'postgres', '--pitr']);
    assert.equal(denied.code, 2, denied.stdout + denied.stderr);
    assert.match(denied.stdout + denied.stderr, /permission denied for (table t|function pg_create_restore_point)/);
    const health = JSON.parse((await runCli(['--config', cfg, '--json', 'healthcheck'])).stdout) as { checks: { check: string; detail: string }[] };
    const detail = health.checks.find((c) => c.check === 'pitr-privileges')!.detail;
    assert.match(detail, /LOCK TABLE … IN SHARE MODE on 1 table, e\.g\. public\.t \(needed by the point-in-time drill/);
    const statements = [...detail.matchAll(/(GRANT [^;]+|ALTER ROLE [^;]+)/g)].map((m) => m[1]!);
    assert.ok(statements.length >= 3, detail);
    for (const statement of statements) await sql(server.port, statement);
    const ok = await runCli(['--config', cfg, '--json', 'drill', 'postgres', '--pitr']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const again = await runCli(['--config', cfg, 'healthcheck']);
    assert.equal(again.code, 0, again.stdout);
    // The passed PITR drill is what DrillStale watches (labels postgres/main-pitr).
    const status = JSON.parse((await runCli(['--config', cfg, '--json', 'status'])).stdout) as { freshness?: { pitr?: { drill: { ageSeconds: number } | null }[] }; pitr?: { drill: { ageSeconds: number } | null }[] };
    const pitr = status.freshness?.pitr ?? status.pitr ?? [];
    assert.ok(pitr[0]?.drill && pitr[0].drill.ageSeconds < 600, JSON.stringify(pitr));
  });
});

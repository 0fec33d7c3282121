import assert from 'node:assert/strict';
import { chmod, chown, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPSCTL, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { sqlOn, startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { postgresGid, postgresUid, startArchivingCluster } from '../helpers/pitr.js';

interface Check {
  ok: boolean;
  segment: string | null;
  steps: { check: string; ok: boolean; detail: string }[];
}

const failed = (r: Check) => r.steps.filter((s) => !s.ok).map((s) => `${s.check}: ${s.detail}`);

/**
 * `opsctl wal check` (pgBackRest's check) against real clusters: one that archives through
 * opsctl, and the ways a set-up is wrong that an operator meets (archive_mode off, another
 * archive_command, another --name, a repository the server's user cannot write, a role
 * without pg_switch_wal). Each names what is wrong, exit 2.
 */
describe('wal check: a segment switched out now reaches the archive and comes back intact, or the check says what is wrong (real clusters)', () => {
  let good: { server: TestPostgresServer; work: string; cfg: string };
  const servers: TestPostgresServer[] = [];
  const dirs: string[] = [];
  before(async () => {
    good = await startArchivingCluster('ops-wal-check-');
  });
  after(async () => {
    await good?.server.remove();
    for (const s of servers) await s.remove();
    for (const d of [good?.work, ...dirs]) if (d) await rm(d, { recursive: true, force: true });
  });

  /** A server set up by `settings`, configured as database main with PITR, its repository its own. */
  const configured = async (settings: Record<string, string>, url?: (s: TestPostgresServer) => string) => {
    const server = await startPostgresServer({ settings });
    servers.push(server);
    const work = await tempDir('ops-wal-check-bad-');
    dirs.push(work);
    const cfg = await writeConfig(work, { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'main', url: url ? url(server) : server.url, pitr: { enabled: true } }] });
    return { server, cfg };
  };

  it('archiving through opsctl: exit 0, the switched segment in the archive, fetched back and proven, of this cluster', async () => {
    const r = await runCli(['--config', good.cfg, '--json', 'wal', 'check', '--name', 'main']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const check = JSON.parse(r.stdout) as Check;
    assert.deepEqual(failed(check), []);
    assert.match(check.segment ?? '', /^[0-9A-F]{24}$/);
    const id = (await sqlOn<{ id: string }>(good.server.port, 'select system_identifier::text as id from pg_control_system()'))[0]!.id;
    assert.match(check.steps.find((s) => s.check === 'fetched back')!.detail, new RegExp(`^16777216 bytes, sha256 [0-9a-f]{16}… as its header says, cluster ${id}$`));
    const text = await runCli(['--config', good.cfg, 'wal', 'check']);
    assert.equal(text.code, 0, text.stdout + text.stderr);
    assert.match(text.stdout, /archiving works: [0-9A-F]{24} reached the archive in \d+\.\d s and came back intact/);
  });

  it('healthcheck runs it without a switch: the last archived file is in the archive (OK), and no segment is forced', async () => {
    const before = (await sqlOn<{ n: string }>(good.server.port, 'select archived_count::text as n from pg_stat_archiver'))[0]!.n;
    const r = await runCli(['--config', good.cfg, '--json', 'healthcheck']);
    const report = JSON.parse(r.stdout) as { state: string; checks: { check: string; ok: boolean; detail: string }[] };
    const wal = report.checks.find((c) => c.check === 'wal-archive');
    assert.ok(wal?.ok, JSON.stringify(report.checks));
    assert.match(wal.detail, /the server's last archived file, is in the archive/);
    assert.equal((await sqlOn<{ n: string }>(good.server.port, 'select archived_count::text as n from pg_stat_archiver'))[0]!.n, before, 'healthcheck archived nothing new');
  });

  it('archive_mode off: exit 2 naming it', async () => {
    const { cfg } = await configured({ wal_level: 'replica' });
    const r = await runCli(['--config', cfg, '--json', 'wal', 'check']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(failed(JSON.parse(r.stdout) as Check).join('\n'), /server: archive_mode is off: set archive_mode = on and restart/);
  });

  it('another archive_command, or opsctl under another --name: exit 2 naming the command and the fix', async () => {
    const other = await configured({ wal_level: 'replica', archive_mode: 'on', archive_command: '/bin/true %p' });
    const r1 = await runCli(['--config', other.cfg, '--json', 'wal', 'check']);
    assert.equal(r1.code, 2, r1.stdout + r1.stderr);
    assert.match(failed(JSON.parse(r1.stdout) as Check).join('\n'), /archive_command: archive_command is "\/bin\/true %p", not opsctl's: set archive_command = 'opsctl --config … wal push %p --name main'/);
    const named = await configured({ wal_level: 'replica', archive_mode: 'on', archive_command: `${process.execPath} ${OPSCTL} --config /x wal push %p --name billing` });
    const r2 = await runCli(['--config', named.cfg, '--json', 'wal', 'check']);
    assert.equal(r2.code, 2, r2.stdout + r2.stderr);
    assert.match(failed(JSON.parse(r2.stdout) as Check).join('\n'), /archive_command pushes under --name billing, not main/);
  });

  it("a repository the server's user cannot write: the archiver fails, and the check names the directory's owner and mode (exit 2; healthcheck DEGRADED)", async () => {
    const { server, work, cfg } = await startArchivingCluster('ops-wal-check-ro-');
    servers.push(server);
    dirs.push(work);
    const repo = path.join(work, 'repo');
    await chown(repo, 0, 0);
    await chmod(repo, 0o755);
    try {
      const r = await runCli(['--config', cfg, '--json', 'wal', 'check', '--timeout', '5']);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(failed(JSON.parse(r.stdout) as Check).join('\n'), new RegExp(`the archiver (is failing|failed on [0-9A-F]{24}).*the repository ${repo} is owned by uid 0 with mode 0755: the server's user must be able to write it`));
      const h = await runCli(['--config', cfg, '--json', 'healthcheck']);
      assert.equal(h.code, 1, h.stdout + h.stderr);
      const wal = (JSON.parse(h.stdout) as { checks: { check: string; ok: boolean; detail: string }[] }).checks.find((c) => c.check === 'wal-archive');
      assert.equal(wal?.ok, false);
      assert.match(wal.detail, /the archiver is failing/);
    } finally {
      await chown(repo, postgresUid, postgresGid);
    }
  });

  it('a role that may not switch WAL: exit 2 naming the GRANT', async () => {
    const { server, cfg } = await configured({ wal_level: 'replica', archive_mode: 'on', archive_command: `${process.execPath} ${OPSCTL} --config /x wal push %p --name main` }, (s) => s.url.replace('postgres@', 'ops_check@'));
    await sqlOn(server.port, 'create role ops_check login');
    const r = await runCli(['--config', cfg, '--json', 'wal', 'check']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(failed(JSON.parse(r.stdout) as Check).join('\n'), /switch: permission denied for function pg_switch_wal: GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal\(\) TO the role/);
  });
});


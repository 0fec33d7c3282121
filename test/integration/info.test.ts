import assert from 'node:assert/strict';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { sqlOn, type TestPostgresServer } from '../helpers/pg-server.js';
import { emptyDataDir, startArchivingCluster, stopCluster, waitArchived } from '../helpers/pitr.js';
import { freePort } from '../helpers/prometheus.js';

interface Info {
  databases: {
    name: string;
    state: string;
    pitr: {
      systemId: string;
      windows: { baseId: string; timelines: number[]; from: { time: string; lsn: string }; to: { segment: string; archivedAt: string } | null; cut?: string; problem?: string }[];
      restorePoints: { name: string; reachable: boolean }[];
      wal: { newest: string };
    } | null;
    dumps: { id: string }[];
    commands: { what: string; command: string }[];
  }[];
}

/**
 * `opsctl info` (pgBackRest's info) on a real cluster: two base backups, a dump, a restore
 * point made by the PITR drill, WAL archived through opsctl. Every window, cut where a
 * restore would stop; the printed commands run as printed.
 */
describe('info: every recoverable window, restore point and dump, with the restore commands that run as printed (real cluster)', () => {
  let server: TestPostgresServer;
  let work: string;
  let cfg: string;
  const clusters: string[] = [];
  before(async () => {
    ({ server, work, cfg } = await startArchivingCluster('ops-info-'));
    await sqlOn(server.port, `create table t (id int primary key, phase text); insert into t select g, 'A' from generate_series(1, 50) g`);
    for (const args of [['backup', 'postgres', '--base'], ['backup', 'postgres']]) {
      const r = await runCli(['--config', cfg, ...args]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    await sqlOn(server.port, `insert into t select g, 'B' from generate_series(51, 100) g`);
    const drill = await runCli(['--config', cfg, 'drill', 'postgres', '--pitr']);
    assert.equal(drill.code, 0, drill.stdout + drill.stderr);
    await sqlOn(server.port, `insert into t select g, 'C' from generate_series(101, 150) g`);
    const second = await runCli(['--config', cfg, 'backup', 'postgres', '--base']);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    // Two more segments after the second base backup: one of them can go missing in between.
    await sqlOn(server.port, `insert into t select g, 'D' from generate_series(151, 200) g`);
    await sqlOn(server.port, 'select pg_switch_wal()');
    await sqlOn(server.port, `insert into t select g, 'E' from generate_series(201, 250) g`);
    await waitArchived(server.port);
  });
  after(async () => {
    for (const c of clusters) stopCluster(c);
    await server?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const info = async (config = cfg) => {
    const r = await runCli(['--config', config, '--json', 'info']);
    return { code: r.code, info: JSON.parse(r.stdout) as Info, stderr: r.stderr };
  };

  it('lists both base backups with a window each up to the newest archived segment, the drill restore point (reachable), the dump, and four commands; exit 0', async () => {
    const { code, info: i, stderr } = await info();
    assert.equal(code, 0, stderr);
    const db = i.databases[0]!;
    assert.equal(db.state, 'ok');
    const id = (await sqlOn<{ id: string }>(server.port, 'select system_identifier::text as id from pg_control_system()'))[0]!.id;
    assert.equal(db.pitr!.systemId, id);
    assert.equal(db.pitr!.windows.length, 2);
    for (const w of db.pitr!.windows) {
      assert.equal(w.cut, undefined, w.cut);
      assert.equal(w.to?.segment, db.pitr!.wal.newest);
      assert.deepEqual(w.timelines, [1]);
    }
    assert.equal(db.pitr!.restorePoints.length, 1);
    assert.match(db.pitr!.restorePoints[0]!.name, /^ops-drill-/);
    assert.equal(db.pitr!.restorePoints[0]!.reachable, true);
    assert.equal(db.dumps.length, 1);
    assert.deepEqual(db.commands.map((c) => c.what.replace(/ \(.*$/, '')), ['to the end of the archive', 'to a time', 'to a restore point', 'the newest dump']);
    const text = await runCli(['--config', cfg, 'info']);
    assert.match(text.stdout, /BASE BACKUP +TIMELINES +FROM \(consistent\) +TO \(archived\)/);
    assert.match(text.stdout, /RESTORE POINT .* REACHABLE/);
  });

  it('the restore-point command runs as printed: "latest" picks the base backup taken before the point (known from the drill record), and the cluster comes back at it (phases A and B only)', async () => {
    const { info: i } = await info();
    const printed = i.databases[0]!.commands.find((c) => c.what.startsWith('to a restore point'))!.command;
    const pgdata = await emptyDataDir(work, 'at-point');
    clusters.push(pgdata);
    const port = await freePort();
    const args = printed.replace('/PATH', pgdata).replace('--port 5433', `--port ${port}`).split(' ').slice(1).map((a) => a.replace(/^'(.*)'$/, '$1'));
    const r = await runCli(args);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const phases = (await sqlOn<{ p: string }>(port, `select string_agg(distinct phase, '' order by phase) as p from t`))[0]!.p;
    assert.equal(phases, 'AB');
  });

  it('a segment lost after the base backups: each window is cut before it, named, exit 1; a database with nothing: exit 2', async () => {
    const { info: i } = await info();
    const w = i.databases[0]!.pitr!.windows[0]!;
    const walDir = path.join(work, 'repo', 'wal', 'main');
    const newest = w.to!.segment;
    const lost = `${newest.slice(0, 16)}${(parseInt(newest.slice(16), 16) - 1).toString(16).toUpperCase().padStart(8, '0')}`;
    await rename(path.join(walDir, `${lost}.zst`), path.join(work, `${lost}.zst`));
    try {
      const cut = await info();
      assert.equal(cut.code, 1, cut.stderr);
      for (const x of cut.info.databases[0]!.pitr!.windows) {
        assert.equal(x.cut, `cut at ${lost}, missing from the archive`);
        assert.ok(x.to!.segment < lost, `${x.to!.segment} before ${lost}`);
      }
    } finally {
      await rename(path.join(work, `${lost}.zst`), path.join(walDir, `${lost}.zst`));
    }
    const emptyDir = await tempDir('ops-info-empty-');
    try {
      const empty = await writeConfig(emptyDir, { repository: { url: `file://${path.join(emptyDir, 'repo')}` }, postgres: [{ name: 'main', url: server.url, pitr: { enabled: true } }] });
      const none = await runCli(['--config', empty, 'info']);
      assert.equal(none.code, 2, none.stdout + none.stderr);
      assert.match(none.stdout, /postgres\/main: nothing restorable/);
    } finally {
      await rm(emptyDir, { recursive: true, force: true });
    }
  });
});

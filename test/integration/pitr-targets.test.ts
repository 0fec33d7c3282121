import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { segmentOfLsn } from '../../src/wal/names.js';
import { OPSCTL, OPSCTL_SH, runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { sqlOn as sql, type TestPostgresServer } from '../helpers/pg-server.js';
import { freePort } from '../helpers/prometheus.js';
import { emptyDataDir, startArchivingCluster, stopCluster, waitArchived } from '../helpers/pitr.js';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowText = async (port: number) => (await sql<{ t: string }>(port, `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as t`))[0]!.t;

/**
 * Two base backups and a target between them, on a real archiving cluster: the restore
 * must come back at the target (from the older base), or refuse; and restore_command's
 * exit status must never let recovery end early as if the archive had ended.
 */
describe('point-in-time targets: the base backup that can reach them, or a refusal; restore_command exits as PostgreSQL reads it (real clusters)', () => {
  let server: TestPostgresServer;
  let work: string;
  let cfg: string;
  const ids: string[] = [];
  let between = '';
  let beforeAll = '';
  const clusters: string[] = [];

  before(async () => {
    ({ server, work, cfg } = await startArchivingCluster('ops-pitr-targets-'));
    const port = server.port;
    await sql(port, 'create table t (id int primary key, phase text)');
    beforeAll = await nowText(port);
    await pause(1100);
    for (const phase of ['A', 'B']) {
      const b = await runCli(['--config', cfg, '--json', 'backup', 'postgres', '--base']);
      assert.equal(b.code, 0, b.stdout + b.stderr);
      ids.push((JSON.parse(b.stdout) as { results: { id: string }[] }).results[0]!.id);
      const base = phase === 'A' ? 0 : 100;
      await sql(port, `insert into t select g, '${phase}' from generate_series(${base + 1}, ${base + 100}) g`);
      if (phase === 'A') {
        await pause(1100);
        between = await nowText(port);
        await pause(1100);
      }
    }
    await sql(port, `insert into t select g, 'C' from generate_series(201, 300) g`);
    await waitArchived(port);
  });
  after(async () => {
    for (const c of clusters) stopCluster(c);
    await server?.remove();
    await rm(work, { recursive: true, force: true });
  });

  const emptyDir = (label: string) => emptyDataDir(work, label);
  const restore = async (label: string, id: string, args: string[], options: { json?: boolean } = {}) => {
    const pgdata = await emptyDir(label);
    const port = await freePort();
    clusters.push(pgdata);
    const r = await runCli(['--config', cfg, ...(options.json === false ? [] : ['--json']), 'restore', 'postgres', id, '--base', '--pgdata', pgdata, '--start', '--port', String(port), ...args]);
    return { r, port, pgdata };
  };
  const phases = async (port: number) => (await sql<{ phase: string; n: string }>(port, 'select phase, count(*)::text as n from t group by phase order by phase')).map((x) => `${x.phase}:${x.n}`).join(' ');

  it('latest with a target between two base backups: the older base is chosen, and the server stops at the target (printed beside it)', async () => {
    const { r, port } = await restore('between', 'latest', ['--to', between], { json: false });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await phases(port), 'A:100', 'rows committed after the target are absent');
    assert.match(r.stdout, new RegExp(`base backup ${ids[0]} restored`));
    assert.match(r.stdout, /asked: +\d{4}-\d\d-\d\d .*\n +stopped: +recovery stopping before commit of transaction \d+, time /);
    assert.match(r.stdout, /last transaction replayed: committed /);
  });

  it('a named base backup consistent only after the target is refused before anything is extracted (exit 2)', async () => {
    const pgdata = await emptyDir('too-new');
    const r = await runCli(['--config', cfg, 'restore', 'postgres', ids[1]!, '--base', '--pgdata', pgdata, '--to', between]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`base backup ${ids[1]} is consistent only from .* after the target .* would come back later than asked`));
    assert.deepEqual(await readdir(pgdata), []);
  });

  it('a target before every base backup: exit 2 naming the reachable window; a target that is no time: exit 64', async () => {
    const pgdata = await emptyDir('too-early');
    const r = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--base', '--pgdata', pgdata, '--to', beforeAll]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`no base backup of postgres/main can reach .*: the oldest base backup ${ids[0]} is consistent from \\d{4}-`));
    assert.deepEqual(await readdir(pgdata), []);
    const bad = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--base', '--pgdata', pgdata, '--to', 'yesterday 3am']);
    assert.equal(bad.code, 64, bad.stderr);
    assert.match(bad.stderr, /is not a time with a zone/);
    const lsn = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--base', '--pgdata', pgdata, '--to-lsn', '0/1']);
    assert.equal(lsn.code, 2, lsn.stderr);
    assert.match(lsn.stderr, /consistent from LSN/);
  });

  it('backups list shows both base backups (kind, WAL range, timeline, server); dr plan from the repository alone offers "to a time", and its command runs as printed', async () => {
    const list = await runCli(['--config', cfg, '--json', 'backups', 'list', 'postgres']);
    assert.equal(list.code, 0, list.stderr);
    const rows = (JSON.parse(list.stdout) as { backups: { name: string; id: string; kind: string; base?: { timeline: number; serverVersion: string; walArchived: boolean } }[] }).backups.filter((b) => b.kind === 'base');
    assert.deepEqual(rows.map((r) => r.id).sort(), [...ids].sort(), 'both base backups, where "(none)" was printed');
    for (const r of rows) {
      assert.equal(r.name, 'main');
      assert.equal(r.base?.timeline, 1);
      assert.match(r.base?.serverVersion ?? '', /^\d+\.\d+/);
      assert.equal(r.base?.walArchived, true);
    }
    const text = await runCli(['--config', cfg, 'backups', 'list', 'postgres']);
    assert.match(text.stdout, new RegExp(`postgres/main +base +${ids[1]} .*verified L3 .*timeline 1, [0-9A-F]+/[0-9A-F]+-[0-9A-F]+/[0-9A-F]+, PostgreSQL \\d+`), 'verified as it landed');

    // No dump has run: status says so, and that the base backups are there (it said "no complete backup in the repository").
    const status = await runCli(['--config', cfg, '--json', 'status']);
    assert.match(status.stdout, /no dump in the repository yet \(its 2 base backups restore to a point in time/);
    const plan = await runCli(['dr', 'plan', '--repository', `file://${path.join(work, 'repo')}`]);
    assert.equal(plan.code, 0, 'every base backup was verified as it landed');
    assert.match(plan.stdout, /postgres\/main \(point in time\): base backup \(PostgreSQL [\d.]+\), 2 in the repository, any moment from .* to the newest archived WAL/);
    assert.doesNotMatch(plan.stdout, /not verified/);
    assert.doesNotMatch(plan.stdout, /no complete backup/);
    const printed = plan.stdout.split('\n').find((l) => l.startsWith('printf '));
    assert.ok(printed, plan.stdout);
    // The command as printed, with only its placeholders filled in (and opsctl as this checkout runs it).
    const pgdata = await emptyDir('from-dr-plan');
    const port = await freePort();
    clusters.push(pgdata);
    const filled = printed.replace('/PATH', pgdata).replace('YYYY-MM-DD HH:MM:SS+00', between).replace('--port 5433', `--port ${port}`).replace(/(^|&& )opsctl /g, `$1${process.execPath} ${OPSCTL} `);
    execFileSync('bash', ['-c', filled], { cwd: work, stdio: 'pipe' });
    assert.equal(await phases(port), 'A:100', 'the moment asked, from the repository alone');
  });

  it('restore --base --target DB: the database as at the moment, copied into a new database from a scratch cluster that is then removed (what the restore task runs in AWS)', async () => {
    const target = `postgresql://postgres@127.0.0.1:${server.port}/at_between`;
    const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--base', '--to', between, '--target', target]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout) as { backupId: string; createdDatabase: boolean; compared: number; mismatches: unknown[]; recovery: string };
    assert.equal(out.backupId, ids[0], 'the older base, the one that reaches the moment');
    assert.equal(out.createdDatabase, true);
    assert.deepEqual(out.mismatches, []);
    assert.match(out.recovery, /recovery stopping before commit/);
    const pg = await import('pg');
    const c = new pg.default.Client({ connectionString: target });
    await c.connect();
    const { rows: phases } = await c.query<{ phase: string; n: string }>('select phase, count(*)::text as n from t group by phase order by phase');
    await c.end();
    assert.equal(phases.map((x) => `${x.phase}:${x.n}`).join(' '), 'A:100', 'rows committed after the moment are absent');
    // Again over it without --confirm: refused (64), as any restore into a filled database.
    const again = await runCli(['--config', cfg, 'restore', 'postgres', 'latest', '--base', '--to', between, '--target', target]);
    assert.equal(again.code, 64, again.stderr);
    assert.deepEqual((await readdir(os.tmpdir())).filter((f) => f.startsWith('ops-pitr-into-')), [], 'no scratch cluster left behind');
  });

  it('wal fetch (as restore_command, through bin/opsctl): 1 only for a name not archived; a damaged object, an empty archive or bad usage exit above 125', async () => {
    const dir = path.join(work, 'repo', 'wal', 'main');
    const segs = (await readdir(dir)).filter((f) => /^[0-9A-F]{24}\.zst$/.test(f)).sort();
    const dest = path.join(work, 'fetched');
    const fetch = (args: string[], config = cfg) => runCli(['--config', config, 'wal', 'fetch', ...args], { command: [OPSCTL_SH], env: { OPSCTL_NODE: process.execPath } });
    const ok = await fetch([segs[1]!.slice(0, 24), dest, '--name', 'main', '--ahead', '0']);
    assert.equal(ok.code, 0, ok.stderr);
    const missing = await fetch(['00000001000000FF000000FF', dest, '--name', 'main']);
    assert.equal(missing.code, 1, missing.stderr);
    // A copy of the archive with one object damaged.
    const copy = path.join(work, 'repo-damaged');
    execFileSync('cp', ['-a', path.join(work, 'repo'), copy]);
    const victim = path.join(copy, 'wal', 'main', segs[1]!);
    const bytes = await readFile(victim);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 10) ^ 0xff, bytes.length - 10);
    await writeFile(victim, bytes);
    const damagedCfg = await writeConfig(await tempDir('ops-pitr-dmg-'), { repository: { url: `file://${copy}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1:1/postgres' }] });
    const damaged = await fetch([segs[1]!.slice(0, 24), dest, '--name', 'main', '--ahead', '0'], damagedCfg);
    assert.equal(damaged.code, 255, damaged.stderr);
    const empty = await writeConfig(await tempDir('ops-pitr-empty-'), { repository: { url: `file://${path.join(work, 'nowhere')}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1:1/postgres' }] });
    const nothing = await fetch([segs[1]!.slice(0, 24), dest, '--name', 'main'], empty);
    assert.equal(nothing.code, 255, nothing.stderr);
    assert.match(nothing.stderr, /holds nothing/);
    const usage = await fetch([segs[1]!.slice(0, 24), dest, '--name', 'other']);
    assert.equal(usage.code, 255, usage.stderr);
    await rm(path.dirname(damagedCfg), { recursive: true, force: true });
    await rm(path.dirname(empty), { recursive: true, force: true });
  });

  it('a damaged segment in the middle of the archive stops recovery (exit 2), instead of promoting early with exit 0', async () => {
    const copy = path.join(work, 'repo-damaged-late');
    execFileSync('cp', ['-a', path.join(work, 'repo'), copy]);
    const cfg2 = await writeConfig(await tempDir('ops-pitr-dmg2-'), { repository: { url: `file://${copy}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1:1/postgres', pitr: { enabled: true } }] });
    await chmod(cfg2, 0o644);
    await chmod(path.dirname(cfg2), 0o755);
    const manifest = JSON.parse(await readFile(path.join(copy, 'postgres', 'main', 'base', ids[0]!, 'manifest.json'), 'utf8')) as { details: { startLsn: string; stopLsn: string } };
    // Damage the segment after the first base backup's stop: recovery from it must read it.
    const segs = (await readdir(path.join(copy, 'wal', 'main'))).filter((f) => /^[0-9A-F]{24}\.zst$/.test(f)).sort();
    const stopSeg = segmentOfLsn(1, manifest.details.stopLsn, 16 << 20);
    const victim = segs.find((f) => f.slice(0, 24) > stopSeg)!;
    const bytes = await readFile(path.join(copy, 'wal', 'main', victim));
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 10) ^ 0xff, bytes.length - 10);
    await writeFile(path.join(copy, 'wal', 'main', victim), bytes);
    const pgdata = await emptyDir('damaged-end');
    clusters.push(pgdata);
    const port = await freePort();
    const r = await runCli(['--config', cfg2, 'restore', 'postgres', ids[0]!, '--base', '--pgdata', pgdata, '--start', '--port', String(port)]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`could not restore file "${victim.slice(0, 24)}" from archive: child process exited with exit code 255`));
    await rm(path.dirname(cfg2), { recursive: true, force: true });
  });

  it('a lost first segment of a kept base backup: wal status and status report the gap, and the restore refuses before extracting', async () => {
    const manifest = JSON.parse(await readFile(path.join(work, 'repo', 'postgres', 'main', 'base', ids[0]!, 'manifest.json'), 'utf8')) as { details: { startLsn: string } };
    const first = segmentOfLsn(1, manifest.details.startLsn, 16 << 20);
    const dir = path.join(work, 'repo', 'wal', 'main');
    // Everything before the first base backup's start goes (as retention would), then its first segment is lost.
    for (const f of await readdir(dir)) if (/^[0-9A-F]{24}\.zst$/.test(f) && f.slice(0, 24) <= first) await rm(path.join(dir, f));
    const st = await runCli(['--config', cfg, '--json', 'wal', 'status', '--name', 'main']);
    assert.equal(st.code, 2, st.stdout);
    assert.match(st.stdout, new RegExp(`${first}.*from a kept base backup's start`));
    const status = JSON.parse((await runCli(['--config', cfg, '--json', 'status'])).stdout) as { pitr: { state: string }[] };
    assert.equal(status.pitr[0]!.state, 'gap');
    const pgdata = await emptyDir('lost-first');
    const r = await runCli(['--config', cfg, 'restore', 'postgres', ids[0]!, '--base', '--pgdata', pgdata]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`segment ${first} is missing from the archive .*nothing was restored`));
    assert.deepEqual(await readdir(pgdata), []);
  });
});

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findBackup, listBackups } from '../../src/backup/catalog.js';
import { baseTarReader } from '../../src/backup/base-tar.js';
import type { Verification } from '../../src/backup/manifest.js';
import { verifyPostgresBase } from '../../src/verify/base-verify.js';
import { pipeline } from 'node:stream/promises';
import { BackupFailedError } from '../../src/backup/errors.js';
import { backupPostgresBase, baseCatalogName } from '../../src/backup/postgres-base.js';
import { silentLog } from '../../src/log.js';
import { FileRepository } from '../../src/repository/file-repository.js';
import { runCli, tempDir, writeConfig } from '../helpers/cli.js';
import { sqlOn, startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { freePort } from '../helpers/prometheus.js';
import { emptyDataDir, postgresGid, postgresUid, startArchivingCluster, stopCluster, waitArchived } from '../helpers/pitr.js';
import { segmentOfLsn } from '../../src/wal/names.js';

const sql = sqlOn;

const uid = postgresUid;
const gid = postgresGid;

describe('point-in-time recovery: base backup + WAL archive, restored to a restore point, a time, an LSN, and along a new timeline (real clusters)', () => {
  let server: TestPostgresServer;
  let work: string;
  let cfg: string;
  let baseId = '';
  let baseVerification: Verification | undefined;
  let afterB = '';
  let lsnAfterB = '';
  const clusters: string[] = [];
  before(async () => {
    ({ server, work, cfg } = await startArchivingCluster('ops-pitr-'));
    const port = server.port;
    await sql(port, 'create table t (id int primary key, phase text)');
    const b = await runCli(['--config', cfg, '--json', 'backup', 'postgres', '--base']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    const first = (JSON.parse(b.stdout) as { results: { id: string; verification: Verification }[] }).results[0]!;
    baseId = first.id;
    baseVerification = first.verification;
    await sql(port, `insert into t select g, 'A' from generate_series(1, 100) g`);
    await sql(port, `select pg_create_restore_point('before_b')`);
    await sql(port, `insert into t select g, 'B' from generate_series(101, 200) g`);
    lsnAfterB = (await sql<{ l: string }>(port, 'select pg_current_wal_lsn()::text as l'))[0]!.l;
    await new Promise((r) => setTimeout(r, 1100));
    afterB = (await sql<{ t: string }>(port, `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as t`))[0]!.t;
    await new Promise((r) => setTimeout(r, 1100));
    await sql(port, `insert into t select g, 'C' from generate_series(201, 300) g`);
    await waitArchived(port);
  });
  after(async () => {
    for (const c of clusters) stopCluster(c);
    await server?.remove();
    await rm(work, { recursive: true, force: true });
  });

  const restore = async (label: string, args: string[]) => {
    const pgdata = await emptyDataDir(work, label);
    const port = await freePort();
    clusters.push(pgdata);
    const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', baseId, '--base', '--pgdata', pgdata, '--start', '--port', String(port), ...args]);
    return { r, port, pgdata };
  };
  const phases = async (port: number) => (await sql<{ phase: string; n: string }>(port, 'select phase, count(*)::text as n from t group by phase order by phase')).map((x) => `${x.phase}:${x.n}`).join(' ');

  it('a base backup from a primary is compressed by pg_basebackup itself (15+), and every restore below is of it', async () => {
    const m = JSON.parse(await readFile(path.join(work, 'repo', 'postgres', 'main', 'base', baseId, 'manifest.json'), 'utf8')) as { payload: { compression: string; streamCodec: string }; tools: { pg_basebackup: string } };
    assert.ok(Number(m.tools.pg_basebackup.split('.')[0]) >= 15, m.tools.pg_basebackup);
    assert.equal(m.payload.compression, 'pg_basebackup --compress=client-zstd:level=1,workers=2');
    assert.equal(m.payload.streamCodec, 'zstd');
    // The payload is a zstd stream of a tar that GNU tar reads, backup_manifest in it.
    const listing = execFileSync('bash', ['-c', `zstd -dc ${path.join(work, 'repo', 'postgres', 'main', 'base', baseId, 'base.tar.zst')} | tar -tf -`], { maxBuffer: 64 << 20 }).toString();
    assert.match(listing, /^backup_label$/m);
    assert.match(listing, /^backup_manifest$/m);
    assert.match(baseVerification?.levels.find((l) => l.level === 2)?.detail ?? '', /files as backup_manifest lists them/);
  });

  it('to the restore point: exactly the rows committed before it, and the server is promoted', async () => {
    const { r, port } = await restore('to-name', ['--to-name', 'before_b']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await phases(port), 'A:100');
    assert.equal((await sql<{ r: boolean }>(port, 'select pg_is_in_recovery() as r'))[0]!.r, false);
    const result = JSON.parse(r.stdout) as { recovery: string; prefetched: number; pgdata: string };
    assert.match(result.recovery, /recovery stopping at restore point "before_b"/);
    // The restore fetched segments into restore_command's spool while recovery ran, and removed the spool after.
    assert.ok(result.prefetched >= 1, `prefetched ${result.prefetched}`);
    await assert.rejects(readdir(path.join(path.dirname(result.pgdata), '.to-name.wal-fetch')), /ENOENT/);
  });

  it('to a time: the rows committed before it', async () => {
    const { r, port } = await restore('to-time', ['--to', afterB]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await phases(port), 'A:100 B:100');
  });

  it('to an LSN: the rows committed before it', async () => {
    const { r, port } = await restore('to-lsn', ['--to-lsn', lsnAfterB]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await phases(port), 'A:100 B:100');
  });

  it('with no target: every archived row', async () => {
    const { r, port } = await restore('to-end', []);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await phases(port), 'A:100 B:100 C:100');
  });

  it('a base backup taken from a standby (which writes no backup history file): its range comes from the tar, verify agrees, and it restores', async () => {
    const standby = await startPostgresServer({ standbyOf: server, settings: { hot_standby: 'on' } });
    try {
      // The same archive name (main), the standby's URL.
      await mkdir(path.join(work, 'standby-cfg'));
      const cfg2 = await writeConfig(path.join(work, 'standby-cfg'), { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'main', url: standby.url, pitr: { enabled: true } }] });
      assert.equal((await sql<{ r: boolean }>(standby.port, 'select pg_is_in_recovery() as r'))[0]!.r, true);
      // A standby's backup ends at what it replayed; that segment reaches the archive when the primary switches.
      let done = false;
      const noise = (async () => {
        await sql(server.port, 'create table if not exists noise (n int)');
        while (!done) {
          await sql(server.port, 'insert into noise values (1); select pg_switch_wal()');
          await new Promise((r) => setTimeout(r, 300));
        }
      })();
      const b = await runCli(['--config', cfg2, '--json', 'backup', 'postgres', '--base']).finally(() => (done = true));
      await noise;
      assert.equal(b.code, 0, b.stdout + b.stderr);
      const id = (JSON.parse(b.stdout) as { results: { id: string }[] }).results[0]!.id;
      const m = JSON.parse(await readFile(path.join(work, 'repo', 'postgres', 'main', 'base', id, 'manifest.json'), 'utf8')) as { details: { startLsn: string; stopLsn: string }; payload: { compression: string } };
      assert.match(m.details.startLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
      // Its tar is read for backup_label on the way, so it is compressed by zstd after it.
      assert.equal(m.payload.compression, 'zstd -1 -T2');
      await waitArchived(server.port);
      const v = await runCli(['--config', cfg, '--json', 'verify', 'postgres', '--base', id]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      const pgdata = path.join(work, 'from-standby');
      await mkdir(pgdata, { mode: 0o700 });
      await chown(pgdata, uid, gid);
      clusters.push(pgdata);
      const port = await freePort();
      const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', id, '--base', '--pgdata', pgdata, '--start', '--port', String(port)]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(await phases(port), 'A:100 B:100 C:100');
      stopCluster(pgdata);
      // The tests after this one drill and report the first base backup: this one goes.
      await rm(path.join(work, 'repo', 'postgres', 'main', 'base', id), { recursive: true });
    } finally {
      await standby.remove();
    }
  });

  it('after a timeline switch: a promoted restore that keeps archiving, restored again, follows the new timeline', async () => {
    const { r, port, pgdata } = await restore('branch', ['--to-name', 'before_b', '--keep-archiving']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await sql(port, `insert into t select g, 'D' from generate_series(1001, 1050) g`);
    await waitArchived(port);
    stopCluster(pgdata);
    const st = await runCli(['--config', cfg, '--json', 'wal', 'status', '--name', 'main']);
    const s = JSON.parse(st.stdout) as { timelines: { timeline: number }[]; histories: number[] };
    assert.deepEqual(s.timelines.map((t) => t.timeline), [1, 2]);
    assert.deepEqual(s.histories, [2]);
    const again = await restore('follow', []);
    assert.equal(again.r.code, 0, again.r.stdout + again.r.stderr);
    assert.equal(await phases(again.port), 'A:100 D:50', 'timeline 2: A, then D; not B and C of timeline 1');
    // Each recovery follows the timeline whose path the restore checked, by number: never
    // 'latest', under which a timeline appearing mid-recovery would be followed unchecked.
    const followed = async (dir: string) => [...(await readFile(path.join(dir, 'postgresql.auto.conf'), 'utf8')).matchAll(/^recovery_target_timeline = '(.*)'$/gm)].map((m) => m[1]).at(-1);
    assert.equal(await followed(pgdata), '1');
    assert.equal(await followed(again.pgdata), '2');
  });

  it('verify --base: the base backup and every WAL segment after it, present and intact (levels 1-3)', async () => {
    const r = await runCli(['--config', cfg, '--json', 'verify', 'postgres', '--base', baseId]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const v = (JSON.parse(r.stdout) as { results: { verification: { levelPassed: number; levels: { detail: string }[] } }[] }).results[0]!.verification;
    assert.equal(v.levelPassed, 3);
    assert.match(v.levels[1]!.detail, /^\d+ files as backup_manifest lists them; WAL \S+ \.\. \S+ on timeline 1$/);
    assert.match(v.levels[2]!.detail, /^\d+ WAL segments from 00000001\w+ to 00000001\w+ present and intact$/);
  });

  // After the branch test: the archive holds timeline 2 of a promoted clone, the live server is on 1.
  it('drill postgres --pitr: restored to a restore point made now on a scratch cluster of its own, promoted, RTO and RPO recorded', async () => {
    const r = await runCli(['--config', cfg, '--json', 'drill', 'postgres', '--pitr']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = (JSON.parse(r.stdout) as { results: { ok: boolean; compared: number; restoreSeconds: number; rpoSeconds: number; scratchDatabase: string; failure?: string }[] }).results[0]!;
    assert.equal(d.ok, true, d.failure);
    assert.ok(d.compared >= 1, 'every table of the restored cluster counted');
    assert.ok(d.restoreSeconds > 0);
    assert.ok(d.rpoSeconds >= 0 && d.rpoSeconds < 120, `RPO ${d.rpoSeconds} s`);
    assert.match(d.scratchDatabase, /restore point ops-drill-/);
    const drillRecord = JSON.parse(await readFile(path.join(work, 'repo', 'postgres', 'main', 'base', baseId, 'drill.json'), 'utf8')) as { ok: boolean };
    assert.equal(drillRecord.ok, true);
  });

  it('drill postgres --pitr compares every table of the configured database with the source at the restore point (rows and content), while the application writes', async () => {
    await sql(server.port, 'create database app');
    const appUrl = `postgresql://postgres@127.0.0.1:${server.port}/app`;
    const onApp = async (text: string) => {
      const { Client } = (await import('pg')).default;
      const c = new Client({ connectionString: appUrl });
      await c.connect();
      try {
        return (await c.query(text)).rows;
      } finally {
        await c.end();
      }
    };
    await onApp(`create table calls (id bigserial primary key, note text); create table "Call Turns" (id int, body text); create table tools (n int); insert into tools select g from generate_series(1, 500) g; insert into "Call Turns" select g, md5(g::text) from generate_series(1, 2000) g`);
    await mkdir(path.join(work, 'app-cfg'));
    const appCfg = await writeConfig(path.join(work, 'app-cfg'), { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'main', url: appUrl, pitr: { enabled: true } }] });
    const { Client } = (await import('pg')).default;
    const writer = new Client({ connectionString: appUrl });
    await writer.connect();
    let writing = true;
    let written = 0;
    const writes = (async () => {
      while (writing) {
        await writer.query(`insert into calls (note) values ('during the drill'); update tools set n = n + 1 where n = (select min(n) from tools)`);
        written += 1;
      }
    })();
    const r = await runCli(['--config', appCfg, '--json', 'drill', 'postgres', '--pitr']).finally(() => (writing = false));
    await writes;
    await writer.end();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const d = (JSON.parse(r.stdout) as { results: { ok: boolean; compared: number; mismatches: unknown[]; differences: string[]; failure?: string }[] }).results[0]!;
    assert.equal(d.ok, true, d.failure);
    assert.equal(d.compared, 3, 'calls, "Call Turns" and tools of the database app');
    assert.deepEqual(d.differences, []);
    assert.deepEqual(d.mismatches, []);
    assert.ok(written > 10, `the application wrote during the drill (${written} writes)`);
  });

  it('SIGTERM during drill postgres --pitr: exit 2 within the grace, the scratch server stopped and its directory removed, no drill recorded', async () => {
    const scratchRoot = await tempDir('ops-pitr-sigterm-');
    await chmod(scratchRoot, 0o755);
    const before = await readFile(path.join(work, 'repo', 'postgres', 'main', 'base', baseId, 'drill.json'), 'utf8');
    let pid = 0;
    const started = Date.now();
    let signalled = 0;
    const run = runCli(['--config', cfg, '--json', 'drill', 'postgres', '--pitr'], { env: { TMPDIR: scratchRoot }, onSpawn: (p) => (pid = p) });
    // The dangerous moment: the scratch cluster is running on a full copy of the data.
    for (let i = 0; i < 300 && !signalled; i += 1) {
      const ps = spawnSync('pgrep', ['-f', `${scratchRoot}/ops-drill-pitr-`]).stdout.toString().trim();
      if (ps) {
        process.kill(pid, 'SIGTERM');
        signalled = Date.now();
      } else await new Promise((r) => setTimeout(r, 100));
    }
    const r = await run;
    assert.ok(signalled, 'the scratch cluster was seen running');
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.ok(Date.now() - signalled < 30_000, `stopped ${Date.now() - signalled} ms after SIGTERM`);
    assert.match(r.stderr, /interrupted: its scratch server was stopped and its scratch data removed; no drill was recorded/);
    assert.equal(spawnSync('pgrep', ['-f', `${scratchRoot}/ops-drill-pitr-`]).stdout.toString().trim(), '', 'no scratch server left running');
    assert.deepEqual(await readdir(scratchRoot), [], 'no scratch directory left');
    assert.equal(await readFile(path.join(work, 'repo', 'postgres', 'main', 'base', baseId, 'drill.json'), 'utf8'), before, 'the last real drill record stays');
    assert.ok(Date.now() - started > 0);
    await rm(scratchRoot, { recursive: true, force: true });
  });

  it('drill all includes the PITR drill where configured: the dump drill and the point-in-time drill, each with RTO and RPO', async () => {
    assert.equal((await runCli(['--config', cfg, 'backup', 'postgres'])).code, 0);
    const r = await runCli(['--config', cfg, '--json', 'drill', 'all']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as { drills: { component: string; name: string; ok: boolean; rpoSeconds: number }[]; notCovered: string[] };
    assert.deepEqual(report.drills.map((d) => [`${d.component}/${d.name}`, d.ok]), [['postgres/main', true], ['postgres/main/base', true]]);
    assert.deepEqual(report.notCovered, []);
    assert.ok(report.drills.every((d) => d.rpoSeconds >= 0));
  });

  it('opsctl status shows the PITR window per database, and the freshness gauges the WAL alarms read', async () => {
    const r = await runCli(['--config', cfg, '--json', 'status']);
    const report = JSON.parse(r.stdout) as { pitr: { database: string; state: string; window: { from: string; to: string } | null; missingSegments: number; archiveFailures: number | null; baseBackup: { id: string } | null }[] };
    const p = report.pitr[0]!;
    assert.equal(p.database, 'main');
    assert.equal(p.state, 'ok', JSON.stringify(p));
    assert.equal(p.missingSegments, 0);
    assert.equal(p.baseBackup?.id, baseId);
    assert.ok(p.window && new Date(p.window.from) < new Date(p.window.to), JSON.stringify(p.window));
    assert.equal(p.archiveFailures, 0);
    const text = await runCli(['--config', cfg, 'status']);
    assert.match(text.stdout, /PITR +STATE +NEWEST WAL/);
  });

  // After the branch test: recovery from the base follows timeline 1 up to the switch, then timeline 2.
  it('the whole path recovery takes is checked before extracting: a missing history file, a segment missing on the later timeline', async () => {
    const copyCfg = async (label: string) => {
      const dir = path.join(work, label);
      execFileSync('cp', ['-a', path.join(work, 'repo'), dir]);
      return writeConfig(await tempDir('ops-pitr-path-'), { repository: { url: `file://${dir}` }, postgres: [{ name: 'main', url: 'postgresql://postgres@127.0.0.1:1/postgres', pitr: { enabled: true } }] });
    };
    const noHistory = await copyCfg('repo-no-history');
    await rm(path.join(work, 'repo-no-history', 'wal', 'main', '00000002.history.zst'));
    const pgdata = path.join(work, 'path-check');
    await mkdir(pgdata);
    const h = await runCli(['--config', noHistory, 'restore', 'postgres', baseId, '--base', '--pgdata', pgdata]);
    assert.equal(h.code, 2, h.stdout + h.stderr);
    assert.match(h.stderr, /timeline 2 has no 00000002\.history in the archive .* wrong history; nothing was restored/);
    assert.deepEqual(await readdir(pgdata), []);
    const noSeg = await copyCfg('repo-no-tl2-seg');
    const tl2 = (await readdir(path.join(work, 'repo-no-tl2-seg', 'wal', 'main'))).filter((f) => /^00000002[0-9A-F]{16}\.zst$/.test(f)).sort();
    await rm(path.join(work, 'repo-no-tl2-seg', 'wal', 'main', tl2[0]!));
    const g = await runCli(['--config', noSeg, 'restore', 'postgres', baseId, '--base', '--pgdata', pgdata]);
    assert.equal(g.code, 2, g.stdout + g.stderr);
    assert.match(g.stderr, new RegExp(`segment ${tl2[0]!.slice(0, 24)} is missing from the archive \\(timeline 2`));
    assert.deepEqual(await readdir(pgdata), []);
    for (const c of [noHistory, noSeg]) await rm(path.dirname(c), { recursive: true, force: true });
  });

  it("the backup command's level 2 reads the tar as it is written: its verdict counts, a failed reading falls back to the stored tar, and stored bytes that differ are not judged by it", async () => {
    const l2 = (v: Verification) => {
      const level = v.levels.find((l) => l.level === 2)!;
      return { ok: level.ok, detail: level.detail ?? '' };
    };
    assert.equal(baseVerification?.ok, true);
    assert.match(l2(baseVerification!).detail, /files as backup_manifest lists them.*\(the tar read as it was written/);
    const repo = new FileRepository(path.join(work, 'repo'));
    const entry = await findBackup(repo, 'postgres', baseCatalogName('main'), baseId);
    const deps = { repo, log: silentLog };
    const reader = baseTarReader('zstd');
    await pipeline(await repo.get(entry.manifest!.payload.key), reader.input);
    const facts = await reader.facts;
    // A reading that saw one file at another size: level 2 fails on it (not overruled by the stored tar).
    const sizes = new Map(facts.sizes);
    const file = [...sizes.keys()].find((k) => k.startsWith('base/'))!;
    sizes.set(file, sizes.get(file)! + 1);
    const skewed = await verifyPostgresBase(entry, 'main', deps, Promise.resolve({ sizes, texts: facts.texts }));
    assert.equal(skewed.ok, false);
    assert.match(l2(skewed).detail, new RegExp(`differ from backup_manifest, first ${file}`));
    // A reading that failed (its zstd died, say): the stored tar is read and judged instead.
    const fellBack = await verifyPostgresBase(entry, 'main', deps, Promise.reject(new Error('the reading failed')));
    assert.equal(fellBack.ok, true, JSON.stringify(fellBack.levels));
    assert.doesNotMatch(l2(fellBack).detail, /as it was written/);
    // Stored bytes that are not those written: level 1 fails, and the reading does not vouch for them.
    const payload = path.join(work, 'repo', entry.manifest!.payload.key);
    const good = await readFile(payload);
    const bad = Buffer.from(good);
    const mid = Math.floor(bad.length / 2);
    bad[mid] = bad[mid]! ^ 1;
    await writeFile(payload, bad);
    try {
      const damaged = await verifyPostgresBase(entry, 'main', deps, Promise.resolve(facts));
      assert.equal(damaged.ok, false);
      assert.equal(damaged.levels.find((l) => l.level === 1)!.ok, false);
      assert.match(l2(damaged).detail, /not judged/);
      assert.equal(l2(damaged).ok, false);
    } finally {
      await writeFile(payload, good);
    }
    // The record left as it was: verified.
    assert.equal((await verifyPostgresBase(entry, 'main', deps, Promise.resolve(facts))).ok, true);
  });

  it('a damaged base backup payload (same size, bytes changed near its end) is refused: exit 2, the server never started', async () => {
    const payload = path.join(work, 'repo', 'postgres', 'main', 'base', baseId, 'base.tar.zst');
    const good = await readFile(payload);
    const bad = Buffer.from(good);
    for (let i = Math.floor(bad.length * 0.95); i < bad.length - 8; i += 7) bad[i] = bad[i]! ^ 0x5a;
    await writeFile(payload, bad);
    try {
      const { r, pgdata } = await restore('damaged', []);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /did not extract|does not match its manifest/);
      const left = await readdir(pgdata);
      assert.ok(!left.includes('recovery.signal') && !left.includes('postmaster.pid'), `not set up to recover, not started: ${left.join(' ')}`);
    } finally {
      await writeFile(payload, good);
    }
  });

  it('a segment missing from the archive is named, and nothing is restored', async () => {
    const dir = path.join(work, 'repo', 'wal', 'main');
    // The base backup's own first segment: needed whichever timeline recovery follows.
    const startLsn = (JSON.parse(await readFile(path.join(work, 'repo', 'postgres', 'main', 'base', baseId, 'manifest.json'), 'utf8')) as { details: { startLsn: string } }).details.startLsn;
    const victim = `${segmentOfLsn(1, startLsn, 16 << 20)}.zst`;
    await rm(path.join(dir, victim));
    const pgdata = path.join(work, 'gap');
    await mkdir(pgdata);
    const r = await runCli(['--config', cfg, 'restore', 'postgres', baseId, '--base', '--pgdata', pgdata]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`segment ${victim.slice(0, 24)} is missing from the archive .*nothing was restored`));
    assert.deepEqual(await readdir(pgdata), []);
    const v = await runCli(['--config', cfg, '--json', 'verify', 'postgres', '--base', baseId]);
    assert.equal(v.code, 2, 'verify --base finds the same gap');
    assert.match(v.stdout, new RegExp(`WAL after the base backup: ${victim.slice(0, 24)} missing`));
    const st = JSON.parse((await runCli(['--config', cfg, '--json', 'status'])).stdout) as { pitr: { state: string; missingSegments: number }[] };
    assert.equal(st.pitr[0]!.state, 'gap');
    assert.equal(st.pitr[0]!.missingSegments, 1);
  });
});

describe('a base backup whose WAL never reaches the archive (a real cluster that does not archive)', () => {
  it('fails naming archive_command, and leaves no base backup and no payload', async () => {
    const work = await tempDir('ops-pitr-noarch-');
    const server = await startPostgresServer({ settings: { wal_level: 'replica' } }); // archive_mode off
    try {
      const repo = new FileRepository(path.join(work, 'repo'));
      await assert.rejects(
        backupPostgresBase({ name: 'main', url: server.url }, { repo, log: silentLog, walWaitMs: 1500 }),
        (e: Error) => e instanceof BackupFailedError && /did not reach the archive within 1\.5 s: is archive_command set to opsctl wal push --name main\?/.test(String((e.cause as Error | undefined)?.message ?? e.message)),
      );
      assert.deepEqual((await listBackups(repo, 'postgres', baseCatalogName('main'))).filter((b) => b.manifest), []);
      const left = await readdir(path.join(work, 'repo', 'postgres', 'main', 'base')).catch(() => [] as string[]);
      for (const id of left) assert.deepEqual(await readdir(path.join(work, 'repo', 'postgres', 'main', 'base', id)), [], `${id}: nothing left`);
    } finally {
      await server.remove();
      await rm(work, { recursive: true, force: true });
    }
  });
});

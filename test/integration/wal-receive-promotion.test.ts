import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPSCTL, runCli, writeConfig } from '../helpers/cli.js';
import { sqlOn, startPostgresServer, type TestPostgresServer } from '../helpers/pg-server.js';
import { commitTicks, until as waitUntil, emptyDataDir, postgresGid, postgresUid, startArchivingCluster, stopCluster } from '../helpers/pitr.js';
import { freePort } from '../helpers/prometheus.js';

const INTERVAL_MS = 1000;
// The timeline the server writes on now (pg_control_checkpoint() lags until the next checkpoint).
const TIMELINE = `select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int as t`;

/**
 * A failover under the receiver. It streams from a standby (a cascading slot, as backups are
 * often taken off a replica); the primary is lost, the standby is promoted to timeline 2 and
 * takes writes; then it is lost too. pg_receivewal follows the timeline switch on the same
 * slot: the old timeline's open segment is closed as a .partial, the new timeline starts at
 * the switch segment's beginning, and its history file arrives through the stream. Restored
 * from the repository alone, to the end: every row committed on either timeline more than
 * 1 s before its server's loss is back, nothing that was never committed is.
 */
describe('wal receive across a promotion: the receiver follows the new timeline on its slot, and a restore to the end replays both (real primary and standby)', { timeout: 300_000 }, () => {
  let primary: TestPostgresServer;
  let standby: TestPostgresServer;
  let work: string;
  let cfg: string;
  let standbyCfg: string;
  let receiver: ChildProcess | undefined;
  let receiverLog = '';
  const clusters: string[] = [];

  const until = (what: string, check: () => Promise<boolean>) => waitUntil(what, check, () => receiverLog);

  before(async () => {
    ({ server: primary, work, cfg } = await startArchivingCluster('ops-wal-receive-promote-', { pitr: { receive: { enabled: true, intervalMs: INTERVAL_MS } } }));
    await sqlOn(primary.port, 'create table ticks (round int, i int, primary key (round, i))');
    const b = await runCli(['--config', cfg, '--json', 'backup', 'postgres', '--base', '--name', 'main']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
    // The standby's own configuration: the same repository and name, its own address. Once
    // promoted it archives through wal push as the primary did (a real failover keeps archiving).
    const standbyPort = await freePort();
    await mkdir(path.join(work, 'standby'), { mode: 0o755 });
    standbyCfg = await writeConfig(path.join(work, 'standby'), { repository: { url: `file://${path.join(work, 'repo')}` }, postgres: [{ name: 'main', url: `postgresql://postgres@127.0.0.1:${standbyPort}/postgres`, pitr: { enabled: true, receive: { enabled: true, intervalMs: INTERVAL_MS } } }] });
    await chmod(standbyCfg, 0o644);
    const spool = path.join(work, 'standby-spool');
    await mkdir(spool, { mode: 0o700 });
    await chown(spool, postgresUid, postgresGid);
    standby = await startPostgresServer({
      standbyOf: primary,
      port: standbyPort,
      settings: { archive_mode: 'on', archive_command: `${process.execPath} ${OPSCTL} --config ${standbyCfg} wal push %p --name main --spool ${spool}` },
    });
    await mkdir(path.join(work, 'receive'), { mode: 0o700 });
    await chown(path.join(work, 'receive'), postgresUid, postgresGid);
  });
  after(async () => {
    if (receiver?.exitCode === null) process.kill(-receiver.pid!, 'SIGKILL');
    for (const c of clusters) stopCluster(c);
    await standby?.remove();
    await primary?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('both timelines restored to the end: rows 1..k of each, k at least every commit older than 1 s at each loss', async () => {
    receiver = spawn(process.execPath, [OPSCTL, '--config', standbyCfg, '--json', 'wal', 'receive', '--name', 'main', '--dir', path.join(work, 'receive'), '--create-slot'], { stdio: ['ignore', 'pipe', 'pipe'], uid: postgresUid, gid: postgresGid, detached: true });
    receiver.stdout!.on('data', (b: Buffer) => (receiverLog += b.toString()));
    receiver.stderr!.on('data', (b: Buffer) => (receiverLog += b.toString()));
    await until('the receiver streaming from the standby', async () => (await sqlOn<{ a: boolean }>(standby.port, `select active as a from pg_replication_slots where slot_name = 'ops_receive_main'`))[0]?.a === true);

    // Timeline 1: the primary takes writes, then is lost at a random moment.
    const one = await commitTicks(primary.port, 1);
    await new Promise((r) => setTimeout(r, 3000 + Math.random() * 2000));
    const primaryLost = Date.now();
    primary.stop();
    await one.stop();

    // The standby is promoted (timeline 2) and takes writes, then is lost too.
    await sqlOn(standby.port, 'select pg_promote(true, 30)');
    const [tl] = await sqlOn<{ t: number }>(standby.port, TIMELINE);
    const two = await commitTicks(standby.port, 2);
    await new Promise((r) => setTimeout(r, 3000 + Math.random() * 2000));
    const standbyLost = Date.now();
    standby.stop();
    await two.stop();

    await new Promise((r) => setTimeout(r, INTERVAL_MS + 500));
    const exited = new Promise<number | null>((res) => receiver!.once('exit', (code) => res(code)));
    receiver.kill('SIGTERM');
    assert.equal(await exited, 0, receiverLog);
    const repoWal = await readdir(path.join(work, 'repo', 'wal', 'main'));
    assert.ok(repoWal.some((f) => f.startsWith('00000002.history')), `the new timeline's history is in the repository: ${repoWal.join(' ')}`);
    const streamedTl2 = await readdir(path.join(work, 'repo', 'wal', 'main', 'chunks')).catch(() => [] as string[]);
    assert.ok(streamedTl2.some((d) => d.startsWith('00000002')), `chunks of timeline 2 were uploaded: ${streamedTl2.join(' ')}\n${receiverLog}`);

    // info says a restore to the end replays the new timeline's streamed segment.
    const info = await runCli(['--config', cfg, '--json', 'info', '--name', 'main']);
    const db = (JSON.parse(info.stdout) as { databases: { pitr: { streamed: { segment: string; reachable: boolean; uploadedAt: string } | null }; commands: { what: string }[] }[] }).databases[0]!;
    const streamed = db.pitr.streamed;
    assert.ok(streamed?.reachable && streamed.segment.startsWith('00000002'), info.stdout);
    assert.ok(db.commands.some((c) => c.what.endsWith(`to about ${streamed.uploadedAt})`)), `the window for a time ends at the last upload: ${info.stdout}`);

    const pgdata = await emptyDataDir(work, 'restored');
    clusters.push(pgdata);
    const port = await freePort();
    const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--base', '--pgdata', pgdata, '--start', '--port', String(port)]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const [restoredTl] = await sqlOn<{ t: number }>(port, TIMELINE);
    assert.ok(restoredTl!.t > tl!.t, `promoted past the streamed timeline ${tl!.t}: on ${restoredTl!.t}`);
    for (const [round, w, lostAt] of [[1, one, primaryLost], [2, two, standbyLost]] as const) {
      const rows = (await sqlOn<{ i: number }>(port, `select i from ticks where round = ${round} order by i`)).map((x) => x.i);
      const k = rows.length;
      assert.deepEqual(rows, Array.from({ length: k }, (_, j) => j + 1), `timeline ${round}: rows 1..k, no hole`);
      assert.ok(k <= w.attempted(), `timeline ${round}: ${k} rows back, ${w.attempted()} attempted`);
      const mustHave = w.acked.reduce((m, at, i) => (at !== undefined && at < lostAt - 1000 ? Math.max(m, i) : m), 0);
      assert.ok(mustHave > 50, `timeline ${round} wrote for seconds (${mustHave})`);
      assert.ok(k >= mustHave, `timeline ${round}: ${k} rows back, but row ${mustHave} was committed more than 1 s before the loss`);
      console.log(`timeline ${round}: ${k} of ${w.attempted()} rows back; newest restored commit ${lostAt - (w.acked[k] ?? lostAt)} ms before the loss`);
    }
    stopCluster(pgdata);
  });
});

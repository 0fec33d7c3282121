import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPSCTL, runCli } from '../helpers/cli.js';
import { sqlOn, type TestPostgresServer } from '../helpers/pg-server.js';
import { commitTicks, until as waitUntil, emptyDataDir, postgresGid, postgresUid, startArchivingCluster, stopCluster } from '../helpers/pitr.js';
import { freePort } from '../helpers/prometheus.js';

const INTERVAL_MS = 1000;

/**
 * RPO in seconds from the repository alone. A real cluster archives through `wal push`
 * (archive_timeout unset: a quiet segment is never switched out) and is streamed by `opsctl
 * wal receive`. A client commits a numbered row every 20 ms; the primary is stopped at a
 * random moment (pg_ctl -m immediate, or SIGKILL of the postmaster); the cluster is restored
 * from the repository, to the end. Every row whose commit returned more than 1 s before the
 * stop must be back, and the rows back are exactly 1..k (nothing never committed, no hole).
 * Between rounds the primary restarts (crash recovery), and the receiver is killed with
 * SIGKILL mid-segment and started again: it resumes from the slot and its chunks.
 */
describe('wal receive: every commit older than 1 s at the primary\'s loss restorable from the repository (real cluster, pg_receivewal, several rounds)', { timeout: 300_000 }, () => {
  let server: TestPostgresServer;
  let work: string;
  let cfg: string;
  let receiver: ChildProcess | undefined;
  let receiverLog = '';
  const clusters: string[] = [];

  const startReceiver = (createSlot = false) => {
    receiver = spawn(process.execPath, [OPSCTL, '--config', cfg, '--json', 'wal', 'receive', '--name', 'main', '--dir', path.join(work, 'receive'), ...(createSlot ? ['--create-slot'] : [])], { stdio: ['ignore', 'pipe', 'pipe'], uid: postgresUid, gid: postgresGid, detached: true });
    receiver.stdout!.on('data', (b: Buffer) => (receiverLog += b.toString()));
    receiver.stderr!.on('data', (b: Buffer) => (receiverLog += b.toString()));
  };
  const stopReceiver = async (signal: NodeJS.Signals) => {
    const r = receiver!;
    if (r.exitCode !== null) return r.exitCode;
    const exited = new Promise<number | null>((res) => r.once('exit', (code) => res(code)));
    // SIGKILL goes to the whole process group, as systemd (KillMode=control-group) and ECS kill a
    // receiver: pg_receivewal dies with it. SIGTERM goes to opsctl alone, which stops its child.
    if (signal === 'SIGKILL') process.kill(-r.pid!, 'SIGKILL');
    else r.kill(signal);
    return exited;
  };
  const slotActive = async () => (await sqlOn<{ a: boolean }>(server.port, `select active as a from pg_replication_slots where slot_name = 'ops_receive_main'`))[0]?.a === true;
  const until = (what: string, check: () => Promise<boolean>) => waitUntil(what, check, () => receiverLog);

  before(async () => {
    ({ server, work, cfg } = await startArchivingCluster('ops-wal-receive-', { pitr: { receive: { enabled: true, intervalMs: INTERVAL_MS } } }));
    // As the server's user, as in production (a systemd unit with User=postgres): a file://
    // repository is private to the user who writes it, and restore_command runs as that user.
    await mkdir(path.join(work, 'receive'), { mode: 0o700 });
    await chown(path.join(work, 'receive'), postgresUid, postgresGid);
    await sqlOn(server.port, 'create table ticks (round int, i int, primary key (round, i))');
    const b = await runCli(['--config', cfg, '--json', 'backup', 'postgres', '--base', '--name', 'main']);
    assert.equal(b.code, 0, b.stdout + b.stderr);
  });
  after(async () => {
    if (receiver?.exitCode === null) process.kill(-receiver.pid!, 'SIGKILL');
    for (const c of clusters) stopCluster(c);
    await server?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('refuses without a slot unless asked to create one, naming the flag and max_slot_wal_keep_size (exit 64)', async () => {
    const r = await runCli(['--config', cfg, 'wal', 'receive', '--name', 'main', '--dir', path.join(work, 'receive')]);
    assert.equal(r.code, 64, r.stdout + r.stderr);
    assert.match(r.stderr, /the replication slot ops_receive_main does not exist .*run once with --create-slot .*max_slot_wal_keep_size/);
    assert.equal((await sqlOn(server.port, `select 1 from pg_replication_slots`)).length, 0, 'no slot created');
  });

  for (const [round, how] of [[1, 'immediate'], [2, 'SIGKILL'], [3, 'immediate'], [4, 'immediate']] as const) {
    const outage = round === 4;
    it(`round ${round}: primary stopped (${how}) at a random moment${outage ? ', after the repository refused every write for 30 s' : ''}; restored to the end: rows 1..k, k at least every commit older than 1 s`, async () => {
      if (round > 1) server.start();
      startReceiver(round === 1);
      await until('the receiver streaming', slotActive);
      if (round === 1) assert.match(receiverLog, /created the physical replication slot ops_receive_main/);
      // The receiver killed mid-segment once, then started again: it resumes from the slot and its chunks.
      if (round === 2) {
        await new Promise((r) => setTimeout(r, 1500));
        await stopReceiver('SIGKILL');
        startReceiver();
        await until('the receiver streaming again', slotActive);
      }
      const ticks = await commitTicks(server.port, round);
      const acked = ticks.acked; // time each row's commit returned
      if (outage) {
        // The repository refuses the receiver (and wal push) for 30 s while rows are committed:
        // the bytes wait in the receiver's directory and go up when it comes back.
        const walDir = path.join(work, 'repo', 'wal', 'main');
        const dirs = [walDir, ...(await readdir(path.join(walDir, 'chunks')).catch(() => [] as string[])).map((d) => path.join(walDir, 'chunks', d)), path.join(walDir, 'chunks')];
        await new Promise((r) => setTimeout(r, 1000));
        for (const d of dirs) await chmod(d, 0o500);
        await new Promise((r) => setTimeout(r, 30_000));
        for (const d of dirs) await chmod(d, 0o700);
      }
      // Round 3 also restores to a moment in the middle: inside the segment nobody archived whole.
      let mid: { at: string; ackedBefore: number; sentAfter: number } | undefined;
      if (round === 3) {
        await new Promise((r) => setTimeout(r, 1500 + Math.random() * 1500));
        const ackedBefore = acked.length - 1;
        const [t] = await sqlOn<{ t: string }>(server.port, `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as t`);
        mid = { at: t!.t, ackedBefore, sentAfter: ticks.attempted() + 1 };
      }
      await new Promise((r) => setTimeout(r, (round === 3 ? 1500 : 3000) + Math.random() * 3000));
      const stoppedAt = Date.now();
      if (how === 'immediate') server.stop();
      else {
        const pid = Number((await import('node:fs')).readFileSync(path.join(server.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
        process.kill(pid, 'SIGKILL');
      }
      await ticks.stop();
      const attempted = ticks.attempted();
      // The receiver outlives the primary: its next upload carries what it had received.
      await new Promise((r) => setTimeout(r, INTERVAL_MS + 500));
      assert.equal(await stopReceiver('SIGTERM'), 0, receiverLog);
      const summary = JSON.parse(receiverLog.slice(receiverLog.lastIndexOf('\n{') + 1)) as { chunks: number; archived: number };
      assert.ok(summary.chunks > 0, `chunks uploaded: ${JSON.stringify(summary)}`);
      if (outage) {
        assert.match(receiverLog, /upload failed, retried every 1000 ms \(received WAL waits in /);
        assert.match(receiverLog, /the repository is reachable again: caught up/);
      }
      receiverLog = '';
      // A SIGKILLed postmaster leaves its backends; they exit when they notice (start clean next round).
      if (how === 'SIGKILL') await new Promise((r) => setTimeout(r, 3000));

      const pgdata = await emptyDataDir(work, `restored-${round}`);
      clusters.push(pgdata);
      const port = await freePort();
      const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--base', '--pgdata', pgdata, '--start', '--port', String(port)]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const rows = (await sqlOn<{ i: number }>(port, `select i from ticks where round = ${round} order by i`)).map((x) => x.i);
      stopCluster(pgdata);
      const k = rows.length;
      assert.deepEqual(rows, Array.from({ length: k }, (_, j) => j + 1), 'rows 1..k, no hole');
      assert.ok(k <= attempted, `${k} rows back, ${attempted} attempted: nothing that was never sent`);
      const mustHave = acked.reduce((m, at, i) => (at !== undefined && at < stoppedAt - 1000 ? Math.max(m, i) : m), 0);
      assert.ok(mustHave > 50, `the round wrote for seconds (${mustHave})`);
      assert.ok(k >= mustHave, `${k} rows back, but row ${mustHave} was committed more than 1 s before the stop`);
      const newest = acked[k];
      console.log(`round ${round} (${how}): ${k} of ${attempted} rows back; newest restored commit ${newest ? stoppedAt - newest : '?'} ms before the stop`);
      if (mid) {
        const atMid = await emptyDataDir(work, `restored-${round}-mid`);
        clusters.push(atMid);
        const midPort = await freePort();
        const m = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--base', '--pgdata', atMid, '--start', '--port', String(midPort), '--to', mid.at]);
        assert.equal(m.code, 0, m.stdout + m.stderr);
        const midRows = (await sqlOn<{ i: number }>(midPort, `select i from ticks where round = ${round} order by i`)).map((x) => x.i);
        stopCluster(atMid);
        const j = midRows.length;
        assert.deepEqual(midRows, Array.from({ length: j }, (_, x) => x + 1), 'rows 1..j at the time');
        assert.ok(j >= mid.ackedBefore && j < mid.sentAfter, `to ${mid.at}: ${j} rows; committed before it ${mid.ackedBefore}, first sent after it ${mid.sentAfter}`);
      }
    });
  }

  it('a segment both deliver (wal push from the server, the receiver from the stream) is stored once, identical: archive_command never fails on it', async () => {
    server.start();
    startReceiver();
    await until('the receiver streaming', slotActive);
    const failedBefore = Number((await sqlOn<{ n: string }>(server.port, 'select failed_count::text as n from pg_stat_archiver'))[0]!.n);
    const switched: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      await sqlOn(server.port, `insert into ticks select 100 + ${i}, g from generate_series(1, 2000) g`);
      switched.push((await sqlOn<{ f: string }>(server.port, 'select pg_walfile_name(pg_current_wal_lsn()) as f'))[0]!.f);
      await sqlOn(server.port, 'select pg_switch_wal()');
    }
    await until('the server archived them', async () => (await sqlOn<{ f: string | null }>(server.port, 'select last_archived_wal as f from pg_stat_archiver'))[0]!.f! >= switched.at(-1)!);
    // Something in the open segment for the receiver to stream (info looks at it below), then two
    // intervals for it to archive its copies (identical, or first) and upload that.
    await sqlOn(server.port, 'insert into ticks values (200, 1)');
    await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS + 500));
    assert.equal(await stopReceiver('SIGTERM'), 0, receiverLog);
    const summary = JSON.parse(receiverLog.slice(receiverLog.lastIndexOf('\n{') + 1)) as { archived: number };
    assert.ok(summary.archived >= 3, `the receiver archived its copies too: ${JSON.stringify(summary)}`);
    const failedAfter = Number((await sqlOn<{ n: string }>(server.port, 'select failed_count::text as n from pg_stat_archiver'))[0]!.n);
    assert.equal(failedAfter, failedBefore, 'no archive_command failure (a conflict would fail it forever)');
    receiverLog = '';
    server.stop();
  });

  it('stopped while the repository refuses its uploads: exit 2 naming where the WAL waits, not 0', async () => {
    server.start();
    startReceiver();
    await until('the receiver streaming', slotActive);
    const walDir = path.join(work, 'repo', 'wal', 'main');
    const dirs = [walDir, path.join(walDir, 'chunks'), ...(await readdir(path.join(walDir, 'chunks'))).map((d) => path.join(walDir, 'chunks', d))];
    for (const d of dirs) await chmod(d, 0o500);
    try {
      await sqlOn(server.port, 'insert into ticks select 300, g from generate_series(1, 500) g');
      await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS));
      assert.equal(await stopReceiver('SIGTERM'), 2, receiverLog);
      assert.match(receiverLog, /stopped with received WAL not uploaded \(the repository refused it\): it waits in .*receive and in the slot ops_receive_main/);
    } finally {
      for (const d of dirs) await chmod(d, 0o700);
    }
    receiverLog = '';
    // Started again with the same directory, it uploads what waited and stops cleanly.
    startReceiver();
    await until('the receiver streaming again', slotActive);
    await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS));
    assert.equal(await stopReceiver('SIGTERM'), 0, receiverLog);
    receiverLog = '';
    server.stop();
  });

  it('the receiver left nothing behind locally but the open segment, and the archive is whole (wal status exit 0)', async () => {
    const left = (await readdir(path.join(work, 'receive'))).filter((f) => !f.endsWith('.partial'));
    assert.deepEqual(left, []);
    // info shows what the chunks add past the archive, and that a restore to the end replays it.
    const info = await runCli(['--config', cfg, '--json', 'info', '--name', 'main']);
    const streamed = (JSON.parse(info.stdout) as { databases: { pitr: { streamed: { reachable: boolean; lsn: string; uploadedAt: string } | null } }[] }).databases[0]!.pitr.streamed;
    assert.ok(streamed?.reachable, info.stdout);
    assert.match(streamed.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.ok(Date.now() - Date.parse(streamed.uploadedAt) < 120_000, streamed.uploadedAt);
    server.start();
    const s = await runCli(['--config', cfg, '--json', 'wal', 'status', '--name', 'main']);
    assert.ok(s.code === 0 || s.code === 1, s.stdout + s.stderr);
    assert.deepEqual((JSON.parse(s.stdout) as { problems: string[] }).problems, []);
  });

  it('the streamed chunks gone while a restore to the end runs (after its plan): recovery ends at the newest archived segment, and the restore exits 2 naming the streamed one, not 0', async () => {
    await sqlOn(server.port, 'insert into ticks select 400, g from generate_series(1, 50) g');
    startReceiver(true); // the slot exists unless this test runs alone
    await until('the receiver streaming', slotActive);
    await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS + 500));
    assert.equal(await stopReceiver('SIGTERM'), 0, receiverLog);
    receiverLog = '';
    server.stop();
    const chunks = path.join(work, 'repo', 'wal', 'main', 'chunks');
    const aside = `${chunks}.aside`;
    const restore = async (label: string, race: boolean) => {
      const pgdata = await emptyDataDir(work, `restored-${label}`);
      clusters.push(pgdata);
      const port = await freePort();
      const run = runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--base', '--pgdata', pgdata, '--start', '--port', String(port)]);
      if (race) {
        // recovery.signal is written after the plan and the extraction, before the server starts:
        // the chunks go then, as retention or an operator could remove them.
        const { existsSync } = await import('node:fs');
        const deadline = Date.now() + 120_000;
        while (!existsSync(path.join(pgdata, 'recovery.signal')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        const { rename } = await import('node:fs/promises');
        await rename(chunks, aside);
      }
      const r = await run;
      const rows = r.code === 0 ? (await sqlOn<{ n: string }>(port, 'select count(*)::text as n from ticks where round = 400'))[0]!.n : undefined;
      stopCluster(pgdata);
      return { ...r, rows };
    };
    try {
      const raced = await restore('chunks-gone', true);
      assert.equal(raced.code, 2, raced.stdout + raced.stderr);
      assert.match(raced.stderr, /recovery ended at [0-9A-F]+\/[0-9A-F]+, before the streamed segment [0-9A-F]{24}: its chunks, there when the restore began, are gone and were not replayed/);
    } finally {
      const { rename } = await import('node:fs/promises');
      await rename(aside, chunks).catch(() => undefined);
    }
    // With the chunks there, the same restore replays them: the rows streamed only are back, exit 0.
    const whole = await restore('chunks-there', false);
    assert.equal(whole.code, 0, whole.stdout + whole.stderr);
    assert.equal(whole.rows, '50');
  });
});

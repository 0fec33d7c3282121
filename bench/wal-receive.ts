import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { sqlOn } from '../test/helpers/pg-server.js';
import { emptyDataDir, postgresGid, postgresUid, startArchivingCluster, stopCluster } from '../test/helpers/pitr.js';
import { freePort } from '../test/helpers/prometheus.js';
import { runCli } from '../test/helpers/cli.js';
import { parseLsn } from '../src/restore/pitr-plan.js';
import { OPSCTL, fixed, table } from './lib.js';

const ROUNDS = Number(process.env.OPS_BENCH_RECEIVE_ROUNDS ?? 8);
/** Seconds of the wal push + archive_timeout = 60 run beside it (0 skips it). */
const TIMEOUT_RUN_S = Number(process.env.OPS_BENCH_RECEIVE_TIMEOUT_SECONDS ?? 240);
/** OPS_BENCH_RECEIVE_PUTS=0 skips the two one-minute PUT counts. */
const PUTS = process.env.OPS_BENCH_RECEIVE_PUTS !== '0';

/** CPU seconds (user + system) of a process and its children still alive, from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const pids = [pid, ...(await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean).map(Number)];
  let ticks = 0;
  for (const p of pids) {
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11] ?? 0) + Number(f[12] ?? 0);
  }
  return ticks / 100;
}
const peakRssMiB = async (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;

/**
 * `npm run bench -- wal-receive`: RPO of `wal receive` at its default interval (1 s), the
 * strict way: the primary (pg_ctl -m immediate) and the receiver (SIGKILL of its process
 * group) are lost at the same instant, so only what had reached the repository counts. RPO of
 * a round = stop time - commit time of the oldest acknowledged row missing after a restore to
 * the end (0 when none is missing). At 10 and 500 commits per second; the receiver's peak RSS
 * and CPU; PUTs per hour busy and idle.
 */
export async function benchWalReceive(): Promise<string> {
  const rows: (string | number)[][] = [];
  const { server, work, cfg } = await startArchivingCluster('ops-bench-receive-', { pitr: { receive: { enabled: true } } });
  const dir = path.join(work, 'receive');
  await mkdir(dir, { mode: 0o700 });
  await chown(dir, postgresUid, postgresGid);
  let receiver: ChildProcess | undefined;
  let log = '';
  const start = (extra: string[] = [], config = cfg) => {
    log = '';
    receiver = spawn(process.execPath, [OPSCTL, '--config', config, '--json', 'wal', 'receive', '--name', 'main', '--dir', dir, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], uid: postgresUid, gid: postgresGid, detached: true });
    receiver.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    receiver.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  };
  // A receiver that already exited (refused to start) is not waited for: its log says why.
  const stopReceiver = async () => {
    const r = receiver!;
    if (r.exitCode !== null || r.signalCode !== null) throw new Error(`the receiver exited early (${r.exitCode ?? r.signalCode}): ${log}`);
    const exited = new Promise((res) => r.once('exit', res));
    r.kill('SIGTERM');
    await exited;
  };
  const active = async () => (await sqlOn<{ a: boolean }>(server.port, `select active as a from pg_replication_slots where slot_name = 'ops_receive_main'`).catch(() => []))[0]?.a === true;
  const waitActive = async () => {
    for (let i = 0; i < 300 && !(await active()); i += 1) await new Promise((r) => setTimeout(r, 100));
  };
  try {
    await sqlOn(server.port, 'create table ticks (round int, i int, primary key (round, i))');
    const b = await runCli(['--config', cfg, '--json', 'backup', 'postgres', '--base', '--name', 'main']);
    if (b.code !== 0) throw new Error(b.stderr);
    let round = 0;
    for (const rate of ROUNDS > 0 ? [10, 500] : []) {
      const rpo: number[] = [];
      let rss = 0;
      let cpuPerMinute = 0;
      for (let n = 0; n < ROUNDS; n += 1) {
        round += 1;
        if (round > 1) server.start();
        start(round === 1 ? ['--create-slot'] : []);
        await waitActive();
        const clients = await Promise.all(Array.from({ length: rate > 50 ? 5 : 1 }, async () => {
          const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres' });
          c.on('error', () => undefined);
          await c.connect();
          return c;
        }));
        const acked = new Map<number, number>();
        let next = 0;
        let writing = true;
        const gap = (1000 / rate) * clients.length;
        const writers = clients.map(async (c) => {
          while (writing) {
            const i = (next += 1);
            const t0 = Date.now();
            try {
              await c.query('insert into ticks values ($1, $2)', [round, i]);
            } catch {
              return;
            }
            acked.set(i, Date.now());
            await new Promise((r) => setTimeout(r, Math.max(0, gap - (Date.now() - t0))));
          }
        });
        const cpu0 = await cpuSeconds(receiver!.pid!);
        const ranMs = 4000 + Math.random() * 4000;
        await new Promise((r) => setTimeout(r, ranMs));
        rss = Math.max(rss, await peakRssMiB(receiver!.pid!));
        cpuPerMinute = Math.max(cpuPerMinute, ((await cpuSeconds(receiver!.pid!)) - cpu0) / (ranMs / 60_000));
        const stoppedAt = Date.now();
        process.kill(-receiver!.pid!, 'SIGKILL');
        server.stop();
        writing = false;
        await Promise.all(writers);
        await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
        const pgdata = await emptyDataDir(work, `restored-${round}`);
        const port = await freePort();
        const r = await runCli(['--config', cfg, '--json', 'restore', 'postgres', 'latest', '--base', '--pgdata', pgdata, '--start', '--port', String(port)]);
        if (r.code !== 0) throw new Error(r.stdout + r.stderr);
        const back = new Set((await sqlOn<{ i: number }>(port, `select i from ticks where round = ${round}`)).map((x) => x.i));
        stopCluster(pgdata);
        await rm(pgdata, { recursive: true, force: true });
        const lost = [...acked].filter(([i]) => !back.has(i)).map(([, at]) => at);
        rpo.push(lost.length === 0 ? 0 : (stoppedAt - Math.min(...lost)) / 1000);
      }
      rows.push([`${rate}/s`, ROUNDS, fixed(pct(rpo, 50)), fixed(pct(rpo, 99)), fixed(Math.max(...rpo)), fixed(rss, 0), fixed(cpuPerMinute)]);
    }
    // PUTs: one busy and one idle minute, counted from the receiver's own summary (stopped with SIGTERM).
    const puts: string[] = [];
    for (const busy of PUTS ? [true, false] : []) {
      server.start();
      start();
      await waitActive();
      const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres' });
      await c.connect();
      const until = Date.now() + 60_000;
      while (Date.now() < until) {
        if (busy) await c.query('insert into ticks values (0, $1) on conflict do nothing', [Math.floor(Math.random() * 1e9)]);
        await new Promise((r) => setTimeout(r, busy ? 20 : 1000));
      }
      await c.end();
      await stopReceiver();
      const s = JSON.parse(log.slice(log.lastIndexOf('\n{') + 1)) as { chunks: number; archived: number };
      puts.push(`${busy ? 'busy (50 commits/s)' : 'idle'}: ${(s.chunks + s.archived) * 60} PUTs/hour (${s.chunks} chunks, ${s.archived} files in 60 s)`);
      server.stop();
    }
    // Commit latency: the receiver asynchronous (default), then synchronous (pitr.receive.synchronous,
    // listed in synchronous_standby_names): each commit waits for pg_receivewal's flush.
    const latency = async (): Promise<[number, number]> => {
      const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres' });
      await c.connect();
      const ms: number[] = [];
      for (let i = 0; i < 500; i += 1) {
        const t0 = process.hrtime.bigint();
        await c.query('insert into ticks values (-1, $1) on conflict do nothing', [i + Math.floor(Math.random() * 1e9)]);
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      await c.end();
      return [pct(ms, 50), pct(ms, 99)];
    };
    if (round > 0 || PUTS) server.start();
    start(['--create-slot']);
    await waitActive();
    const asyncLatency = await latency();
    await stopReceiver();
    const syncCfg = path.join(work, 'sync.config.json');
    const parsed = JSON.parse(await readFile(cfg, 'utf8')) as { postgres: { pitr: { receive: Record<string, unknown> } }[] };
    parsed.postgres[0]!.pitr.receive.synchronous = true;
    await writeFile(syncCfg, JSON.stringify(parsed));
    await chmod(syncCfg, 0o644);
    await sqlOn(server.port, `alter system set synchronous_standby_names = 'ops_receive_main'`);
    await sqlOn(server.port, 'select pg_reload_conf()');
    start(['--create-slot'], syncCfg);
    for (let i = 0; i < 300; i += 1) {
      const [r] = await sqlOn<{ s: string }>(server.port, `select sync_state as s from pg_stat_replication where application_name = 'ops_receive_main'`);
      if (r?.s === 'sync') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const [state] = await sqlOn<{ s: string }>(server.port, `select sync_state as s from pg_stat_replication where application_name = 'ops_receive_main'`);
    const syncLatency = await latency();
    await sqlOn(server.port, 'alter system reset synchronous_standby_names');
    await sqlOn(server.port, 'select pg_reload_conf()');
    await stopReceiver();
    server.stop();
    puts.push(`commit latency (500 single-row commits, server fsync=off, receiver's disk fsynced): asynchronous p50 ${fixed(asyncLatency[0])} ms / p99 ${fixed(asyncLatency[1])} ms; synchronous (sync_state ${state?.s ?? 'none'}) p50 ${fixed(syncLatency[0])} ms / p99 ${fixed(syncLatency[1])} ms`);
    if (TIMEOUT_RUN_S > 0) rows.push(await archiveTimeoutRpo(TIMEOUT_RUN_S));
    return [
      '### wal receive: RPO from the repository alone (primary and receiver lost at once)',
      '',
      table(rows, ['commits', 'rounds', 'RPO p50 (s)', 'RPO p99 (s)', 'RPO max (s)', 'receiver peak RSS (MiB)', 'receiver CPU (s per minute)']),
      '',
      ...puts.map((p) => `- ${p}`),
    ].join('\n');
  } finally {
    if (receiver?.exitCode === null) process.kill(-receiver.pid!, 'SIGKILL');
    await server.remove();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The same RPO without the receiver: `wal push` alone with archive_timeout = 60, as the seeds'
 * hourly switch shortened to a minute. A real cluster takes 10 commits per second for
 * `seconds`; each commit's WAL position is read as it returns, and the repository's archived
 * segments are listed every 100 ms. A stop at moment t loses every commit past the end of the
 * contiguous archived WAL at t (a restore to the end replays exactly the archived segments),
 * so RPO(t) = t - the oldest such commit's time; taken at 1,000 moments spread over the run
 * after its first 60 s (one restore per moment would cost a minute each and say the same).
 */
export async function archiveTimeoutRpo(seconds: number): Promise<(string | number)[]> {
  const { server, work } = await startArchivingCluster('ops-bench-archive-timeout-');
  try {
    await sqlOn(server.port, 'alter system set archive_timeout = 60');
    await sqlOn(server.port, 'select pg_reload_conf()');
    await sqlOn(server.port, 'create table ticks (i int primary key)');
    await sqlOn(server.port, 'select pg_switch_wal()');
    const segmentBytes = Number((await sqlOn<{ s: string }>(server.port, `select setting as s from pg_settings where name = 'wal_segment_size'`))[0]!.s);
    const walDir = path.join(work, 'repo', 'wal', 'main');
    const archived = new Set<number>();
    // When each archived end was first seen: [time, end LSN of the contiguous archived WAL].
    const ends: [number, bigint][] = [];
    let first: number | undefined;
    const look = async () => {
      for (const f of await readdir(walDir).catch(() => [] as string[])) {
        const m = /^[0-9A-F]{8}([0-9A-F]{8})([0-9A-F]{8})\.zst$/.exec(f);
        if (m) archived.add(Number.parseInt(m[1]!, 16) * (0x100000000 / segmentBytes) + Number.parseInt(m[2]!, 16));
      }
      if (first === undefined && archived.size > 0) first = Math.min(...archived);
      if (first === undefined) return;
      let i = first;
      while (archived.has(i + 1)) i += 1;
      const end = BigInt(i + 1) * BigInt(segmentBytes);
      if (ends.length === 0 || ends.at(-1)![1] !== end) ends.push([Date.now(), end]);
    };
    const c = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    const commits: [number, bigint][] = [];
    const t0 = Date.now();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        await look();
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    for (let i = 1; Date.now() - t0 < seconds * 1000; i += 1) {
      const started = Date.now();
      await c.query('insert into ticks values ($1)', [i]);
      const at = Date.now();
      // Past the commit record: archived up to here, the commit is restorable.
      const lsn = (await c.query<{ l: string }>('select pg_current_wal_lsn()::text as l')).rows[0]!.l;
      commits.push([at, parseLsn(lsn)]);
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - started))));
    }
    watching = false;
    await watcher;
    await c.end();
    const rpo: number[] = [];
    const from = t0 + 60_000;
    const to = commits.at(-1)![0];
    // Moments rise and ends are in the order seen: one index walks both.
    let seenIndex = -1;
    for (let k = 0; k < 1000; k += 1) {
      const t = from + ((to - from) * k) / 999;
      while (seenIndex + 1 < ends.length && ends[seenIndex + 1]![0] <= t) seenIndex += 1;
      const end = seenIndex >= 0 ? ends[seenIndex]![1] : 0n;
      const lost = commits.find(([at, lsn]) => at <= t && lsn > end);
      rpo.push(lost ? (t - lost[0]) / 1000 : 0);
    }
    return [`10/s, wal push alone, archive_timeout = 60`, `1,000 moments over ${seconds} s`, fixed(pct(rpo, 50)), fixed(pct(rpo, 99)), fixed(Math.max(...rpo)), '-', '-'];
  } finally {
    await server.remove();
    await rm(work, { recursive: true, force: true });
  }
}

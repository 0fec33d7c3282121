import { execFileSync, spawnSync } from 'node:child_process';
import { chown, mkdir, readdir, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { sqlOn, startPostgresServer } from '../test/helpers/pg-server.js';
import { freePort } from '../test/helpers/prometheus.js';
import { waitArchived } from '../test/helpers/pitr.js';
import { fixed, measure, mib, OPSCTL_SH, table, WORK, type Measured } from './lib.js';

/**
 * Point-in-time recovery beside pgBackRest 2.45 (Debian package), one run, same cluster:
 * base backup, archive-push of 200 real segments (one call per segment, and with a
 * backlog), restore to a point in time up to a promoted server.
 */
const SCALE = Number(process.env.OPS_BENCH_PGBENCH_SCALE ?? 70); // pgbench -s 70: about 1.05 GB of table data
const PUSH = Number(process.env.OPS_BENCH_PUSH_SEGMENTS ?? 200);
const pgBin = (tool: string) => `/usr/lib/postgresql/${execFileSync('ls', ['/usr/lib/postgresql']).toString().trim().split('\n').sort().pop()}/bin/${tool}`;
const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
/** Each side's turn in every alternating step: neither side always first. */
const ORDER = ['ours', 'theirs', 'theirs', 'ours', 'ours', 'theirs'] as const;
/** One call per segment once each side, then the backlog once per turn of ORDER: each round a database name of its own. */
const PUSH_ROUNDS = 2 + ORDER.length;
const asPg = (cmd: string) => `runuser -u postgres -- ${cmd}`;

const sql = sqlOn;

/** The archiver caught up (a backlog of 200 segments: up to 10 minutes). */
const caughtUp = (port: number) => waitArchived(port, { attempts: 3000, intervalMs: 200 });

async function owned(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await chown(dir, uid, gid);
  return dir;
}

async function du(dir: string): Promise<number> {
  return Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
}

/** One archive_command call after another, as PostgreSQL makes them; `.ready` renamed `.done` after each success, as PostgreSQL does. */
async function pushLoop(dir: string, files: string[], command: (file: string) => string, backlog: boolean): Promise<Measured> {
  const status = path.join(dir, 'archive_status');
  const script = path.join(dir, '..', `${path.basename(dir)}.sh`);
  const lines = ['set -e'];
  for (const f of files) {
    lines.push(command(path.join(dir, f)));
    if (backlog) lines.push(`mv ${status}/${f}.ready ${status}/${f}.done`);
  }
  await writeFile(script, lines.join('\n'));
  await chown(script, uid, gid);
  return measure(`bash ${script}`);
}

async function stageSegments(source: string, files: string[], dir: string, backlog: boolean): Promise<void> {
  await owned(path.join(dir, 'archive_status'));
  for (const f of files) {
    await copyFile(path.join(source, f), path.join(dir, f));
    await chown(path.join(dir, f), uid, gid);
    if (backlog) await writeFile(path.join(dir, 'archive_status', `${f}.ready`), '');
  }
  execFileSync('chown', ['-R', `${uid}:${gid}`, dir]);
}

async function waitPromoted(port: number): Promise<void> {
  for (let i = 0; i < 6000; i += 1) {
    try {
      const [r] = await sql<{ r: boolean }>(port, 'select pg_is_in_recovery() as r');
      if (r && !r.r) return;
    } catch {
      // starting
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('not promoted');
}

export async function benchPitr(): Promise<string> {
  const work = path.join(WORK, 'pitr');
  await rm(work, { recursive: true, force: true });
  await owned(work);
  execFileSync('chmod', ['755', WORK, work]);
  const repo = await owned(path.join(work, 'repo'));
  const walsrc = await owned(path.join(work, 'walsrc'));
  const pgbrRepo = await owned(path.join(work, 'pgbr'));
  const port = await freePort();
  const cfg = path.join(work, 'ops.config.json');
  await writeFile(cfg, JSON.stringify({ repository: { url: `file://${repo}` }, postgres: ['main', ...Array.from({ length: PUSH_ROUNDS }, (_, i) => `push-${i + 1}`)].map((name) => ({ name, url: `postgresql://postgres@127.0.0.1:${port}/postgres`, pitr: { enabled: name === 'main' } })) }));
  const pgbrConf = path.join(work, 'pgbackrest.conf');
  const server = await startPostgresServer({
    port,
    settings: {
      wal_level: 'replica',
      archive_mode: 'on',
      max_wal_size: '4GB',
      // --resident, as the stack's ArchiveCommand output and doc/pitr.md give it: without it each
      // file costs a Node start, and a base backup waits for two (its history file, its stop segment).
      archive_command: `OPSCTL_NODE=${process.execPath} ${OPSCTL_SH} --config ${cfg} wal push %p --name main --spool ${work}/server-spool --resident && pgbackrest --config=${pgbrConf} --stanza=bench archive-push %p && cp %p ${walsrc}/%f`,
    },
  });
  const data = path.join(server.dir, 'data');
  // Same codec and level on both sides: zstd level 1; two workers each (our zstd -T2, pgBackRest process-max 2).
  await writeFile(pgbrConf, `[global]\nrepo1-path=${pgbrRepo}\ncompress-type=zst\ncompress-level=1\nprocess-max=2\nstart-fast=y\nlog-level-console=warn\nlog-path=${work}\nspool-path=${work}/pgbr-spool\n\n[bench]\npg1-path=${data}\npg1-port=${port}\npg1-socket-path=${server.dir}\n`);
  await chown(pgbrConf, uid, gid);
  const out: string[] = [];
  try {
    execFileSync('bash', ['-c', asPg(`pgbackrest --config=${pgbrConf} --stanza=bench stanza-create`)]);
    process.stderr.write(`loading pgbench -s ${SCALE}...\n`);
    execFileSync(pgBin('pgbench'), ['-i', '-s', String(SCALE), '-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'postgres'], { stdio: 'ignore' });
    await caughtUp(port);
    const dataBytes = Number((await sql<{ b: string }>(port, `select pg_database_size('postgres')::text as b`))[0]!.b);

    // Every measured step starts from a quiet disk: a checkpoint, then sync. Without it the step
    // after a load (or after the other side's gigabyte restore) paid for that writeback, and the
    // restore ratio moved between 0.72x and 1.53x over runs in which neither side changed. Each
    // side runs three times in the order ours, theirs, theirs, ours, ours, theirs (neither side
    // always first), and the ratio is that of the medians: one slow round of six (this VM's
    // disk; it hit either side, 1.5x its others) then moves neither.
    //
    // Then memory is touched. This VM hands pages the guest has left free back to its host
    // (virtio-balloon free page reporting, feature bit 5 here): the first process after that to
    // fill gigabytes of page cache pays a host fault per page, as system time in the copy into
    // the page cache. Whichever side restored first after the loads was its slowest: ours in
    // every run until then (first restore 10.43 s, 6.61 s of system CPU; the next ones 7.91 and
    // 8.61 s, 3.22 and 4.16 s), pgBackRest's when it went first (3.13 s of system CPU against
    // 1.47). 3 GiB written to /dev/shm here took 2.62 s of system time the first time, 1.19-1.49
    // s the next. So before each step the pages it will use are made the host's again: 4 GiB
    // (a restore fills about 3: the extracted cluster, the replayed WAL, the tables it rebuilds)
    // written and freed, which the next allocations take first.
    const warm = path.join('/dev/shm', `ops-bench-warm-${process.pid}`);
    const settle = async () => {
      await sql(port, 'checkpoint');
      execFileSync('sync');
      execFileSync('bash', ['-c', `head -c 4G /dev/zero > ${warm}; rm -f ${warm}`]);
    };
    const alternate = async (ours: () => Promise<Measured>, theirs: () => Promise<Measured>) => {
      const o: Measured[] = [];
      const t: Measured[] = [];
      for (const side of ORDER) {
        await settle();
        if (side === 'ours') o.push(await ours());
        else t.push(await theirs());
      }
      return { ours: o, theirs: t };
    };
    process.stderr.write('base backups (ours, theirs, theirs, ours, ours, theirs)\n');
    // Both start with a fast checkpoint: whichever ran first would otherwise flush the load's dirty buffers for the other.
    const bases = await alternate(
      () => measure(`${OPSCTL_SH} --config ${cfg} --json backup postgres --base --name main`),
      () => measure(asPg(`pgbackrest --config=${pgbrConf} --stanza=bench --type=full backup`)),
    );
    const oursBytes = (JSON.parse(bases.ours[1]!.stdout) as { results: { bytes: number }[] }).results[0]!.bytes;
    const fulls = (await readdir(path.join(pgbrRepo, 'backup', 'bench'))).filter((d) => /F$/.test(d)).sort();
    const theirsBytes = await du(path.join(pgbrRepo, 'backup', 'bench', fulls[fulls.length - 1]!));

    // WAL to replay: a second load after the base backups, then the target time, then a third.
    process.stderr.write('more WAL (two more loads)\n');
    execFileSync(pgBin('pgbench'), ['-i', '-s', String(SCALE), '-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'postgres'], { stdio: 'ignore' });
    await caughtUp(port);
    await new Promise((r) => setTimeout(r, 1100));
    const target = (await sql<{ t: string }>(port, `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as t`))[0]!.t;
    await new Promise((r) => setTimeout(r, 1100));
    execFileSync(pgBin('pgbench'), ['-i', '-s', String(SCALE), '-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'postgres'], { stdio: 'ignore' });
    await caughtUp(port);

    process.stderr.write('restore to a point in time, up to a promoted server (ours, theirs, theirs, ours, ours, theirs)\n');
    let round = 0;
    const rows = { ours: new Set<string>(), theirs: new Set<string>() };
    /**
     * Where each restore's time went, from the restored server's own log: before its first log
     * line (plan, extraction and checks; pgBackRest's restore), to its end of redo, and to
     * "ready to accept connections" (the end-of-recovery checkpoint).
     */
    const phases: Record<'ours' | 'theirs', string[]> = { ours: [], theirs: [] };
    /** What the machine did during each restore: free memory at its start, all CPUs' busy seconds (the restored server's and restore_command's included). */
    const machine: Record<'ours' | 'theirs', string[]> = { ours: [], theirs: [] };
    const snapshot = async () => {
      const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      const free = Number(/MemFree:\s+(\d+)/.exec(await readFile('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024;
      // user nice system irq softirq steal: busy; idle and iowait are not.
      const busy = (cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + (cpu[7] ?? 0)) / 100;
      return { free, busy };
    };
    const observed = async <T>(side: 'ours' | 'theirs', run: () => Promise<T>): Promise<T> => {
      const a = await snapshot();
      const result = await run();
      const b = await snapshot();
      machine[side].push(`${fixed(a.free / 1024, 1)} GiB free, ${fixed(b.busy - a.busy, 1)} s busy`);
      return result;
    };
    const phase = async (side: 'ours' | 'theirs', log: string, startedMs: number) => {
      const text = await readFile(log, 'utf8').catch(() => '');
      const at = (re: RegExp) => {
        const line = text.split('\n').find((l) => re.test(l));
        const stamp = line?.match(/^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC/)?.[1];
        return stamp ? (Date.parse(`${stamp.replace(' ', 'T')}Z`) - startedMs) / 1000 : NaN;
      };
      const first = at(/ UTC \[\d+\] LOG: /);
      const redo = at(/redo done at/);
      const ready = at(/database system is ready to accept connections$/);
      phases[side].push(`${fixed(first)} / ${fixed(redo - first)} / ${fixed(ready - redo)}`);
    };
    /** The restored server's rows, then the server stopped and its directory removed (six restores would hold 6 GB). */
    const finish = async (side: 'ours' | 'theirs', dir: string, p: number) => {
      rows[side].add((await sql<{ n: string }>(p, 'select count(*)::text as n from pgbench_accounts'))[0]!.n);
      execFileSync('bash', ['-c', asPg(`${pgBin('pg_ctl')} -D ${dir} -m immediate -w stop`)], { stdio: 'ignore' });
      await rm(dir, { recursive: true, force: true });
    };
    const restores = await alternate(
      async () => {
        const r1 = await owned(path.join(work, `restore-ours-${(round += 1)}`));
        const p1 = await freePort();
        const startedMs = Date.now();
        const m = await observed('ours', () => measure(`${OPSCTL_SH} --config ${cfg} restore postgres latest --name main --base --pgdata ${r1} --to '${target}' --start --port ${p1}`));
        await phase('ours', path.join(r1, 'ops-restore.log'), startedMs);
        await finish('ours', r1, p1);
        return m;
      },
      async () => {
        const r2 = await owned(path.join(work, `restore-pgbr-${(round += 1)}`));
        const p2 = await freePort();
        await rm(path.join(work, 'pgbr-restore.log'), { force: true });
        const started = process.hrtime.bigint();
        const startedMs = Date.now();
        const m = await observed('theirs', async () => {
          const done = await measure(asPg(`pgbackrest --config=${pgbrConf} --stanza=bench --pg1-path=${r2} --type=time '--target=${target}' --target-action=promote restore`));
          execFileSync('bash', ['-c', asPg(`${pgBin('pg_ctl')} -D ${r2} -l ${work}/pgbr-restore.log -o '-p ${p2} -k ${r2} -c archive_mode=off' -w start`)], { stdio: 'ignore' });
          await waitPromoted(p2);
          return done;
        });
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        await phase('theirs', path.join(work, 'pgbr-restore.log'), startedMs);
        await finish('theirs', r2, p2);
        return { ...m, seconds };
      },
    );
    const median = (ms: Measured[]) => [...ms].sort((a, b) => a.seconds - b.seconds)[Math.floor(ms.length / 2)]!.seconds;
    const each = (ms: Measured[]) => ms.map((m) => fixed(m.seconds)).join(' / ');
    const sameRows = rows.ours.size === 1 && rows.theirs.size === 1 && [...rows.ours][0] === [...rows.theirs][0];

    // Enough real segments for the push rounds: more loads until the archive copy holds PUSH.
    for (let i = 0; i < 6 && (await readdir(walsrc)).filter((f) => /^[0-9A-F]{24}$/.test(f)).length < PUSH; i += 1) {
      execFileSync(pgBin('pgbench'), ['-i', '-s', String(SCALE), '-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'postgres'], { stdio: 'ignore' });
      await caughtUp(port);
    }
    process.stderr.write(`archive-push of ${PUSH} segments: one call per segment once each side, a backlog three times each side\n`);
    const segments = (await readdir(walsrc)).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort().slice(0, PUSH);
    const n = segments.length;
    // opsctl's pushes run as root here: their spools sit in a directory root owns, as the
    // spool's trust rule asks of every component (the work directory is the postgres user's).
    const spools = path.join(WORK, 'pitr-spools');
    await rm(spools, { recursive: true, force: true });
    await mkdir(spools, { mode: 0o700 });
    /** One round into a repository of its own (a segment already there would be skipped, not pushed), removed after. */
    let pushes = 0;
    const pushRound = async (side: 'ours' | 'theirs', backlog: boolean): Promise<Measured> => {
      const k = (pushes += 1);
      const dir = path.join(work, `push-${k}`, 'pg_wal');
      await stageSegments(walsrc, segments, dir, backlog);
      // pgBackRest reads the cluster's pg_control from pg1-path: give the staged directory a copy.
      await mkdir(path.join(path.dirname(dir), 'global'), { recursive: true });
      await copyFile(path.join(data, 'global', 'pg_control'), path.join(path.dirname(dir), 'global', 'pg_control'));
      execFileSync('chown', ['-R', `${uid}:${gid}`, path.dirname(dir)]);
      const pgbrRepoK = `${work}/pgbr-push-${k}`;
      const name = `push-${k}`;
      let cmd: (f: string) => string;
      if (side === 'ours') {
        cmd = backlog
          ? (f) => `${OPSCTL_SH} --config ${cfg} wal push ${f} --name ${name} --spool ${spools}/${name}`
          : (f) => `${OPSCTL_SH} --config ${cfg} wal push ${f} --name ${name} --parallel 1 --spool ${spools}/${name}`;
      } else {
        execFileSync('bash', ['-c', asPg(`pgbackrest --config=${pgbrConf} --stanza=bench --repo1-path=${pgbrRepoK} stanza-create`)]);
        // pg1-path: pgBackRest finds pg_wal/archive_status under it (the segments' own directory here).
        const base = `pgbackrest --config=${pgbrConf} --stanza=bench --pg1-path=${path.dirname(dir)} --repo1-path=${pgbrRepoK}`;
        cmd = backlog ? (f) => asPg(`${base} --archive-async --process-max=4 archive-push ${f}`) : (f) => asPg(`${base} archive-push ${f}`);
      }
      await settle();
      process.stderr.write(`  ${side} ${backlog ? 'backlog' : 'one call per segment'} (round ${k})\n`);
      const m = await pushLoop(dir, segments, cmd, backlog);
      // A resident pusher, if a round left one, would serve on for its idle time: stopped, so the next round has the machine.
      if (side === 'ours') spawnSync('pkill', ['-TERM', '-f', `wal push --serve --name ${name} --spool ${spools}/${name}( |$)`]);
      await rm(path.join(work, `push-${k}`), { recursive: true, force: true });
      await rm(path.join(repo, 'wal', name), { recursive: true, force: true });
      await rm(pgbrRepoK, { recursive: true, force: true });
      return m;
    };
    const oneCall = { ours: await pushRound('ours', false), theirs: await pushRound('theirs', false) };
    // The backlog three times each side, in the restores' order, each after a checkpoint, sync and
    // memory touch: one round each (runs J-P) moved the ratio between 0.99x and 1.21x with
    // neither side changed.
    const backlogs: Record<'ours' | 'theirs', Measured[]> = { ours: [], theirs: [] };
    for (const side of ORDER) backlogs[side].push(await pushRound(side, true));

    out.push(`### Point-in-time recovery beside pgBackRest 2.45 (pgbench -s ${SCALE}: ${mib(dataBytes)} MiB database; zstd level 1 both, 2 workers each; base backups, restores and backlog pushes three times each side, ours / theirs / theirs / ours / ours / theirs, each after a checkpoint, sync and a 4 GiB memory touch; ratios of the medians)\n`);
    out.push(
      table(
        [
          ['base backup', 'opsctl backup postgres --base', each(bases.ours), mib(oursBytes), fixed(Math.max(...bases.ours.map((m) => m.rssMiB)), 0)],
          ['base backup', 'pgbackrest backup --type=full', each(bases.theirs), mib(theirsBytes), '-'],
          ['restore to a time, to a promoted server', 'opsctl restore postgres --base --to T --start', each(restores.ours), `${[...rows.ours].join(', ')} rows`, fixed(Math.max(...restores.ours.map((m) => m.rssMiB)), 0)],
          ['restore to a time, to a promoted server', 'pgbackrest restore --type=time + pg_ctl start', each(restores.theirs), `${[...rows.theirs].join(', ')} rows`, '-'],
          [`archive-push ${n} segments`, 'opsctl wal push, one call per segment (no backlog)', `${fixed(oneCall.ours.seconds)} (${fixed(n / oneCall.ours.seconds, 1)}/s)`, '-', fixed(oneCall.ours.rssMiB, 0)],
          [`archive-push ${n} segments`, 'pgbackrest archive-push (sync)', `${fixed(oneCall.theirs.seconds)} (${fixed(n / oneCall.theirs.seconds, 1)}/s)`, '-', '-'],
          [`archive-push ${n} segments`, 'opsctl wal push with a backlog (--parallel 4, spooled)', each(backlogs.ours), '-', fixed(Math.max(...backlogs.ours.map((m) => m.rssMiB)), 0)],
          [`archive-push ${n} segments`, 'pgbackrest archive-push --archive-async (process-max 4)', each(backlogs.theirs), '-', '-'],
        ],
        ['step', 'command', 'seconds', 'size / result', 'opsctl peak RSS MiB'],
      ),
      '',
      `- base backup: ${fixed(median(bases.ours) / median(bases.theirs))}x pgBackRest's time (medians ${fixed(median(bases.ours))} / ${fixed(median(bases.theirs))} s), ${fixed(oursBytes / theirsBytes)}x its size (target <= 1.2x time)`,
      `- restore to a promoted server: ${fixed(median(restores.ours) / median(restores.theirs))}x pgBackRest's (medians ${fixed(median(restores.ours))} / ${fixed(median(restores.theirs))} s; target <= 1.2x); all six recovered the same rows: ${sameRows ? 'yes' : 'NO'}`,
      `- each restore, seconds before the server's first log line / redo / end of redo to ready: ours ${phases.ours.join(', ')}; pgBackRest ${phases.theirs.join(', ')}`,
      `- the machine during each restore (free memory at its start; CPU seconds of all processes, the restored server's and restore_command's included): ours ${machine.ours.join('; ')}; pgBackRest ${machine.theirs.join('; ')}`,
      `- push with a backlog: ${fixed(n / median(backlogs.ours), 1)} segments/s vs pgBackRest async ${fixed(n / median(backlogs.theirs), 1)}/s (medians of three, ${fixed(median(backlogs.ours))} / ${fixed(median(backlogs.theirs))} s; target >= 1.0x: ${fixed(median(backlogs.theirs) / median(backlogs.ours))}x); one call per segment (once each): ${fixed(n / oneCall.ours.seconds, 1)}/s vs ${fixed(n / oneCall.theirs.seconds, 1)}/s`,
      `- opsctl peak RSS across all of it: ${fixed(Math.max(...bases.ours.map((m) => m.rssMiB), ...restores.ours.map((m) => m.rssMiB), oneCall.ours.rssMiB, ...backlogs.ours.map((m) => m.rssMiB)), 0)} MiB (target <= 150)`,
    );
  } finally {
    await server.remove();
    // The resident pusher the archive_command started would serve on for its idle time (10 min),
    // into the next run: stopped with the server it served (pkill exits 1 when it already left).
    spawnSync('pkill', ['-TERM', '-f', `wal push --serve --name main --spool ${work}/server-spool`]);
  }
  return out.join('\n');
}

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sqlOn, startPostgresServer } from '../test/helpers/pg-server.js';
import { freePort } from '../test/helpers/prometheus.js';
import { waitArchived } from '../test/helpers/pitr.js';
import { fixed, measure, OPSCTL, table, WORK, type Measured } from './lib.js';

/** What PostgreSQL calls, as doc/pitr.md says: the installed opsctl (bin/opsctl). */
const OPSCTL_SH = path.join(path.dirname(OPSCTL), 'opsctl');
const PUSH = Number(process.env.OPS_BENCH_PUSH_SEGMENTS ?? 200);
const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString());

async function owned(dir: string, mode = 0o755): Promise<string> {
  await mkdir(dir, { recursive: true, mode });
  await chown(dir, uid, gid);
  return dir;
}

/** CPU seconds a live process has used (utime + stime of /proc/PID/stat). */
async function processCpu(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/**
 * archive_command's cost on the database host: PostgreSQL's archiver calls it once per
 * segment, one after the other. The same real segments (full of table data) are pushed by
 * each command in turn, as the postgres user, with the `.ready` file PostgreSQL would have
 * made for the segment being pushed (renamed `.done` after each success, as PostgreSQL does;
 * no backlog). Wall time gives segments per second; CPU is every process the loop ran (GNU
 * time over the whole loop) plus, for --resident, the resident pusher's own CPU from /proc.
 */
export async function benchWalPush(): Promise<string> {
  const work = path.join(WORK, 'wal-push');
  await rm(work, { recursive: true, force: true });
  await mkdir(WORK, { recursive: true });
  execFileSync('chmod', ['755', WORK]);
  await owned(work);
  const walsrc = await owned(path.join(work, 'walsrc'));
  const port = await freePort();
  const cfg = path.join(work, 'ops.config.json');
  await writeFile(cfg, JSON.stringify({ repository: { url: `file://${path.join(work, 'repo')}` }, postgres: ['node', 'resident'].map((name) => ({ name, url: `postgresql://postgres@127.0.0.1:${port}/postgres` })) }));
  await chown(cfg, uid, gid);
  await owned(path.join(work, 'repo'));
  const pgbrConf = path.join(work, 'pgbackrest.conf');
  const server = await startPostgresServer({ port, settings: { wal_level: 'replica', archive_mode: 'on', max_wal_size: '4GB', archive_command: `cp %p ${walsrc}/%f` } });
  const data = path.join(server.dir, 'data');
  await writeFile(pgbrConf, `[global]\nrepo1-path=${work}/pgbr\ncompress-type=zst\ncompress-level=1\nlog-level-console=warn\nlog-path=${work}\n\n[bench]\npg1-path=${data}\npg1-port=${port}\npg1-socket-path=${server.dir}\n`);
  await chown(pgbrConf, uid, gid);
  await owned(path.join(work, 'pgbr'));
  try {
    process.stderr.write(`writing ${PUSH} segments of table data...\n`);
    await sqlOn(port, 'create table t (i bigint, v text)');
    while ((await readdir(walsrc)).filter((f) => /^[0-9A-F]{24}$/.test(f)).length < PUSH + 1) {
      await sqlOn(port, `insert into t select g, md5(g::text) || md5(random()::text) from generate_series(1, 400000) g`);
      await waitArchived(port, { attempts: 3000, intervalMs: 100 });
    }
    // The first segment holds initdb's WAL: the rest are what a busy server archives.
    const segments = (await readdir(walsrc)).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort().slice(1, PUSH + 1);
    const n = segments.length;
    const rounds: { label: string; m: Measured; extraCpu: number }[] = [];
    const spools = await owned(path.join(work, 'spools'));
    const commands: [string, (f: string) => string][] = [
      ['pgbackrest archive-push (sync)', (f) => `pgbackrest --config=${pgbrConf} --stanza=bench --pg1-path=${path.dirname(path.dirname(f))} archive-push ${f}`],
      ['opsctl wal push (Node per call)', (f) => `OPSCTL_NODE=${process.execPath} ${OPSCTL_SH} --config ${cfg} wal push ${f} --name node --spool ${spools}/node`],
      ['opsctl wal push --resident', (f) => `OPSCTL_NODE=${process.execPath} ${OPSCTL_SH} --config ${cfg} wal push ${f} --name resident --spool ${spools}/resident --resident`],
    ];
    execFileSync('runuser', ['-u', 'postgres', '--', 'pgbackrest', `--config=${pgbrConf}`, '--stanza=bench', 'stanza-create']);
    for (const [label, command] of commands) {
      const dir = path.join(work, `push-${rounds.length}`, 'pg_wal');
      await owned(path.join(dir, 'archive_status'));
      // pgBackRest reads the cluster's pg_control from pg1-path: the staged directory has a copy.
      await owned(path.join(path.dirname(dir), 'global'));
      await copyFile(path.join(data, 'global', 'pg_control'), path.join(path.dirname(dir), 'global', 'pg_control'));
      for (const f of segments) await copyFile(path.join(walsrc, f), path.join(dir, f));
      execFileSync('chown', ['-R', `${uid}:${gid}`, path.dirname(dir)]);
      const status = path.join(dir, 'archive_status');
      const lines = ['set -e'];
      for (const f of segments) lines.push(`: > ${status}/${f}.ready`, command(path.join(dir, f)), `mv ${status}/${f}.ready ${status}/${f}.done`);
      const script = path.join(work, `push-${rounds.length}.sh`);
      await writeFile(script, `${lines.join('\n')}\n`);
      // Drop the page cache's advantage: every round reads its own copy, written just now.
      execFileSync('sync');
      process.stderr.write(`  ${label}\n`);
      const m = await measure(`runuser -u postgres -- bash ${script} > /dev/null`);
      let extraCpu = 0;
      const pid = Number((await readFile(path.join(spools, 'resident', '.resident'), 'utf8').catch(() => '')).split(' ')[0]);
      if (label.includes('--resident') && pid > 0) {
        extraCpu = await processCpu(pid);
        process.kill(pid, 'SIGTERM');
      }
      rounds.push({ label, m, extraCpu });
    }
    const theirs = rounds[0]!;
    const perSeg = (r: (typeof rounds)[number]) => ((r.m.cpuSeconds ?? Number.NaN) + r.extraCpu) / n;
    const resident = rounds[2]!;
    return [
      `### archive_command, one call per segment (${n} real segments of table data, no backlog; zstd level 1 both; as the postgres user)\n`,
      table(
        rounds.map((r) => [r.label, fixed(r.m.seconds), fixed(n / r.m.seconds, 1), fixed(perSeg(r) * 1000, 1), r.extraCpu ? fixed(r.extraCpu, 2) : '-']),
        ['command', 'seconds', 'segments/s', 'CPU ms per segment', 'of it the resident, s'],
      ),
      '',
      `- --resident: ${fixed(theirs.m.seconds / resident.m.seconds)}x pgBackRest's synchronous throughput (target >= 1.0x), ${fixed(perSeg(resident) / perSeg(theirs))}x its CPU per segment (target <= 1.0x)`,
      `- Node per call: ${fixed(theirs.m.seconds / rounds[1]!.m.seconds)}x its throughput, ${fixed(perSeg(rounds[1]!) / perSeg(theirs))}x its CPU per segment`,
      `- bin/opsctl's stat: ${existsSync('/usr/lib/bash/stat') ? "bash's builtin (bash-builtins installed: no fork per call)" : 'forked (bash-builtins not installed)'}`,
    ].join('\n');
  } finally {
    await server.remove();
  }
}

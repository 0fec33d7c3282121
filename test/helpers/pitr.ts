import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { OPSCTL, tempDir, writeConfig } from './cli.js';
import { pgBin, sqlOn, startPostgresServer, type TestPostgresServer } from './pg-server.js';
import { freePort } from './prometheus.js';

export const postgresUid = Number(execFileSync('id', ['-u', 'postgres']).toString());
export const postgresGid = Number(execFileSync('id', ['-g', 'postgres']).toString());

/**
 * A cluster of its own archiving through `opsctl wal push` (as the postgres user) into a
 * file:// repository it owns, with a configuration readable by that user: the set-up every
 * point-in-time test starts from.
 */
export async function startArchivingCluster(prefix: string, options: { bindir?: string; pitr?: Record<string, unknown> } = {}): Promise<{ server: TestPostgresServer; work: string; cfg: string }> {
  const work = await tempDir(prefix);
  await chmod(work, 0o755);
  const repo = path.join(work, 'repo');
  await mkdir(repo);
  await chown(repo, postgresUid, postgresGid);
  const port = await freePort();
  const cfg = await writeConfig(work, { repository: { url: `file://${repo}` }, postgres: [{ name: 'main', url: `postgresql://postgres@127.0.0.1:${port}/postgres`, pitr: { enabled: true, ...options.pitr } }] });
  await chmod(cfg, 0o644);
  const spool = path.join(work, 'server-spool');
  await mkdir(spool, { mode: 0o700 });
  await chown(spool, postgresUid, postgresGid);
  const server = await startPostgresServer({
    port,
    ...(options.bindir ? { bindir: options.bindir } : {}),
    settings: { wal_level: 'replica', archive_mode: 'on', archive_command: `${process.execPath} ${OPSCTL} --config ${cfg} wal push %p --name main --spool ${spool}` },
  });
  return { server, work, cfg };
}

/** Switches WAL and waits (30 s unless told) until the archiver has no .ready file left. */
export async function waitArchived(port: number, options: { attempts?: number; intervalMs?: number } = {}): Promise<void> {
  await sqlOn(port, 'select pg_switch_wal()');
  for (let i = 0; i < (options.attempts ?? 300); i += 1) {
    const [r] = await sqlOn<{ n: string }>(port, `select count(*)::text as n from pg_ls_archive_statusdir() where name like '%.ready'`);
    if (r!.n === '0') return;
    await new Promise((res) => setTimeout(res, options.intervalMs ?? 100));
  }
  throw new Error('archiver did not catch up');
}

/** Stops a restored cluster (as the postgres user, immediate). */
export function stopCluster(pgdata: string): void {
  spawnSync('runuser', ['-u', 'postgres', '--', pgBin('pg_ctl'), '-D', pgdata, '-m', 'immediate', '-w', 'stop'], { stdio: 'ignore' });
}

/** An empty data directory for a restored cluster under `work`, both owned by the postgres user (the server runs as it). */
export async function emptyDataDir(work: string, label: string): Promise<string> {
  const pgdata = path.join(work, label);
  await mkdir(pgdata, { mode: 0o700 });
  await chown(pgdata, postgresUid, postgresGid);
  await chown(work, postgresUid, postgresGid);
  return pgdata;
}

/**
 * A client committing numbered rows (`insert into ticks values (round, i)`, i = 1, 2, …)
 * every 20 ms until stopped or its server goes away: `acked[i]` is when row i's commit
 * returned, `attempted()` the highest i sent. What an RPO test holds a restore to.
 */
export async function commitTicks(port: number, round: number): Promise<{ acked: number[]; attempted: () => number; stop: () => Promise<void> }> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await client.connect();
  client.on('error', () => undefined);
  const acked: number[] = [];
  let attempted = 0;
  let writing = true;
  const done = (async () => {
    while (writing) {
      attempted += 1;
      try {
        await client.query('insert into ticks values ($1, $2)', [round, attempted]);
        acked[attempted] = Date.now();
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    acked,
    attempted: () => attempted,
    stop: async () => {
      writing = false;
      await done;
      await client.end().catch(() => undefined);
    },
  };
}

/** Polls `check` every 100 ms until it holds (a throw counts as not yet); after `timeoutMs`, fails naming `what` and `context()` (a receiver's log, say). */
export async function until(what: string, check: () => Promise<boolean>, context: () => string = () => '', timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

import type pg from 'pg';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../errors.js';
import { withPostgres } from '../postgres/connect.js';
import type { Repository } from '../repository/repository.js';
import { isArchived, pollArchive } from './archive.js';
import { walKey } from './names.js';
import { checkWalObject } from './object.js';
import { archiveSystemId } from './system-id.js';

export interface WalCheckStep {
  check: 'server' | 'archive_command' | 'archiver' | 'switch' | 'archived' | 'fetched back';
  ok: boolean;
  detail: string;
}

export interface WalCheckResult {
  name: string;
  ok: boolean;
  /** The segment the check switched out and waited for. */
  segment: string | null;
  /** From the switch until the segment was in the archive. */
  archivedSeconds: number | null;
  steps: WalCheckStep[];
}

interface ServerFacts {
  inRecovery: boolean;
  walLevel: string;
  archiveMode: string;
  archiveCommand: string;
  archiveLibrary: string;
  systemId: string;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedAt: Date | null;
  lastArchivedWal: string | null;
  lastArchivedAt: Date | null;
}

/**
 * pgBackRest's `check` for this archive: is the server set to archive through opsctl under
 * this name, and does a segment it completes now reach the archive intact? The server is
 * made to complete one (a transaction id, so there is WAL to switch, then pg_switch_wal()),
 * the archive is polled for that segment (bounded), and the object is fetched back and
 * decoded: its size and sha256 proven against its header, its cluster the server's.
 * Reports every step; the first failure names what to fix.
 */
export async function walCheck(repo: Repository, name: string, url: string, options: { timeoutMs?: number; switchWal?: boolean } = {}): Promise<WalCheckResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const steps: WalCheckStep[] = [];
  const result = (segment: string | null = null, archivedSeconds: number | null = null): WalCheckResult => ({ name, ok: steps.every((s) => s.ok), segment, archivedSeconds, steps });

  let facts: ServerFacts;
  try {
    facts = await withPostgres(url, serverFacts, 'ops-automation-wal-check', { timeoutMs: 10_000 });
  } catch (error) {
    steps.push({ check: 'server', ok: false, detail: errorMessage(error) });
    return result();
  }
  const serverProblems = [
    facts.inRecovery ? 'the server is a standby: run the check against the primary (a standby archives only with archive_mode = always, and cannot switch WAL)' : '',
    facts.walLevel === 'minimal' ? 'wal_level is minimal: set wal_level = replica and restart' : '',
    facts.archiveMode === 'off' ? "archive_mode is off: set archive_mode = on and restart (doc/pitr.md, 'Setting it up')" : '',
  ].filter(Boolean);
  steps.push({ check: 'server', ok: serverProblems.length === 0, detail: serverProblems.join('; ') || `wal_level ${facts.walLevel}, archive_mode ${facts.archiveMode}, cluster ${facts.systemId}` });

  const command = commandProblem(facts, name);
  steps.push({ check: 'archive_command', ok: command === undefined, detail: command ?? facts.archiveCommand });

  const archived = await archiveSystemId(repo, name).catch((error: unknown) => `unreadable (${errorMessage(error)})`);
  if (archived && archived !== facts.systemId) {
    steps.push({ check: 'archiver', ok: false, detail: `the archive of ${name} holds cluster ${archived}, this server is cluster ${facts.systemId}: its pushes are refused (doc/pitr.md, 'One archive, one cluster')` });
    return result();
  }
  const failing = facts.lastFailedAt && (!facts.lastArchivedAt || facts.lastFailedAt > facts.lastArchivedAt);
  steps.push({
    check: 'archiver',
    ok: !failing,
    detail: failing
      ? `the archiver is failing: ${facts.lastFailedWal} failed at ${facts.lastFailedAt!.toISOString()}${facts.lastArchivedAt ? `, last success ${facts.lastArchivedAt.toISOString()}` : ', never a success'} (${facts.failedCount} failures; the server's log has the command's own words)${await repositoryHint(repo)}`
      : `${facts.lastArchivedAt ? `last archived ${facts.lastArchivedAt.toISOString()}` : 'nothing archived yet'}, ${facts.failedCount} failures since the statistics were reset`,
  });
  if (steps.some((s) => !s.ok)) return result();

  // Without a switch (healthcheck, run every few seconds by a container runtime: a switch
  // each time would archive 16 MiB each time), the segment the server last archived is
  // fetched back: that proves archive_command writes into this repository under this name.
  if (options.switchWal === false) {
    if (!facts.lastArchivedWal) {
      steps.push({ check: 'archived', ok: false, detail: `the server has archived nothing since its statistics were reset: run opsctl wal check --name ${name}` });
      return result();
    }
    // A listing, not a download: a health check runs often, and 16 MiB each time is not cheap on S3.
    const there = await isArchived(repo, name, facts.lastArchivedWal);
    steps.push(
      there
        ? { check: 'archived', ok: true, detail: `${facts.lastArchivedWal}, the server's last archived file, is in the archive` }
        : { check: 'archived', ok: false, detail: `the server last archived ${facts.lastArchivedWal}, but ${repo.url} holds no ${walKey(name, facts.lastArchivedWal)}: archive_command writes elsewhere (another repository or --name)` },
    );
    return result(facts.lastArchivedWal);
  }

  let segment: string;
  const switched = Date.now();
  try {
    segment = await withPostgres(url, switchSegment, 'ops-automation-wal-check', { timeoutMs: 10_000 });
    steps.push({ check: 'switch', ok: true, detail: `pg_switch_wal() completed ${segment}` });
  } catch (error) {
    const code = (error as { code?: string }).code;
    steps.push({ check: 'switch', ok: false, detail: code === '42501' ? `${errorMessage(error)}: GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO the role (doc/pitr.md, 'The backup role's privileges')` : errorMessage(error) });
    return result();
  }

  const key = walKey(name, segment);
  const object = await pollArchive(async () => (await repo.getBytes(key)) ?? undefined, timeoutMs);
  const seconds = (Date.now() - switched) / 1000;
  if (!object) {
    const after = await withPostgres(url, serverFacts, 'ops-automation-wal-check', { timeoutMs: 10_000 }).catch(() => undefined);
    const why = after?.lastFailedAt && (!facts.lastFailedAt || after.lastFailedAt > facts.lastFailedAt) ? `the archiver failed on ${after.lastFailedWal} at ${after.lastFailedAt.toISOString()} (the server's log has the command's own words)${await repositoryHint(repo)}` : 'the archiver reported no failure: is it running (archive_mode needs a restart), or is archive_command pushing to another repository?';
    steps.push({ check: 'archived', ok: false, detail: `${segment} did not reach ${repo.url} within ${timeoutMs / 1000} s: ${why}` });
    return result(segment);
  }
  steps.push({ check: 'archived', ok: true, detail: `${segment} in the archive after ${seconds.toFixed(1)} s` });
  steps.push(await fetchedBack(facts, segment, object));
  return result(segment, seconds);
}

/** The object decoded: its size and sha256 proven against its header, its cluster the server's. */
async function fetchedBack(facts: ServerFacts, file: string, object: Buffer): Promise<WalCheckStep> {
  try {
    const header = await checkWalObject(file, object);
    if (header.systemId && header.systemId !== facts.systemId) throw new Error(`${file} in the archive is of cluster ${header.systemId}, this server is cluster ${facts.systemId}`);
    return { check: 'fetched back', ok: true, detail: `${header.bytes} bytes, sha256 ${header.sha256.slice(0, 16)}… as its header says, cluster ${header.systemId ?? 'not recorded (pushed before 2026-12)'}` };
  } catch (error) {
    return { check: 'fetched back', ok: false, detail: errorMessage(error) };
  }
}

async function serverFacts(c: pg.Client): Promise<ServerFacts> {
  const { rows } = await c.query<{ r: boolean; wl: string; am: string; ac: string; al: string | null; id: string; fc: string; fw: string | null; ft: Date | null; aw: string | null; at: Date | null }>(
    `select pg_is_in_recovery() as r, current_setting('wal_level') as wl, current_setting('archive_mode') as am,
            current_setting('archive_command') as ac, current_setting('archive_library', true) as al,
            (select system_identifier::text from pg_control_system()) as id,
            a.failed_count::text as fc, a.last_failed_wal as fw, a.last_failed_time as ft, a.last_archived_wal as aw, a.last_archived_time as at
       from pg_stat_archiver a`,
  );
  const r = rows[0]!;
  return { inRecovery: r.r, walLevel: r.wl, archiveMode: r.am, archiveCommand: r.ac, archiveLibrary: r.al ?? '', systemId: r.id, failedCount: Number(r.fc), lastFailedWal: r.fw, lastFailedAt: r.ft, lastArchivedWal: r.aw, lastArchivedAt: r.at };
}

/** A transaction id makes a commit record, so the current segment has WAL to switch out even on an idle server. */
async function switchSegment(c: pg.Client): Promise<string> {
  await c.query('select pg_catalog.txid_current()');
  const { rows } = await c.query<{ f: string }>('select pg_catalog.pg_walfile_name(pg_catalog.pg_switch_wal()) as f');
  return rows[0]!.f;
}

/** Why archive_command is not opsctl's push under this name, or undefined when it is. */
function commandProblem(facts: ServerFacts, name: string): string | undefined {
  if (facts.archiveLibrary) return `archive_library is ${facts.archiveLibrary}, which replaces archive_command: unset it and set archive_command = 'opsctl … wal push %p --name ${name}'`;
  const cmd = facts.archiveCommand;
  if (!/\bwal\s+push\b/.test(cmd) || !/(^|\/|\s)opsctl(\.js)?\b/.test(cmd)) return `archive_command is ${JSON.stringify(cmd)}, not opsctl's: set archive_command = 'opsctl --config … wal push %p --name ${name}' and reload`;
  const given = /--name[ =]("?)([^\s"]+)\1/.exec(cmd)?.[2];
  if (given !== name) return `archive_command pushes ${given ? `under --name ${given}` : 'without --name'}, not ${name}: ${JSON.stringify(cmd)}`;
  if (!cmd.includes('%p')) return `archive_command has no %p (the file PostgreSQL hands over): ${JSON.stringify(cmd)}`;
  return undefined;
}

/** For a file:// repository: who owns it, since the server's user must be able to write it. */
async function repositoryHint(repo: Repository): Promise<string> {
  if (!repo.url.startsWith('file://')) return '';
  try {
    const dir = fileURLToPath(repo.url);
    const st = await stat(dir);
    return `; the repository ${dir} is owned by uid ${st.uid} with mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: the server's user must be able to write it`;
  } catch (error) {
    return `; the repository ${repo.url} cannot be read here (${errorMessage(error)})`;
  }
}

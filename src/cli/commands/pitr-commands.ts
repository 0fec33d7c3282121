import { chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findBackup, listBackups, pickBackup } from '../../backup/catalog.js';
import { chooseBase, parseTarget, recoveryPath } from '../../restore/pitr-plan.js';
import { backupPostgresBase, baseCatalogName, type BaseDetails } from '../../backup/postgres-base.js';
import type { BaseTarFacts } from '../../backup/base-tar.js';
import { carriedConfig } from '../../config/carried.js';
import { progressOf, selectOne, type JobContext } from '../../jobs/context.js';
import { postgresUrl } from '../../jobs/endpoints.js';
import { restorePostgresBase, scratchOwner, stopCluster, type PitrTarget } from '../../restore/postgres-pitr.js';
import { copyDatabase } from '../../restore/postgres-restore.js';
import { databaseOf, withDatabase } from '../../postgres/connect.js';
import { freePort } from '../../util/free-port.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import { walStatus } from '../../wal/status.js';
import { EXIT, type CommandOutcome } from '../output.js';
import { restoreCommandFor, restoreSpoolSource } from './restore-command-line.js';
import { verifyOutcome } from './verify-outcome.js';

/** `opsctl backup postgres --base`: a physical base backup, complete once the WAL to its stop LSN is archived. */
export async function baseBackupCommand(ctx: JobContext, name?: string): Promise<CommandOutcome> {
  const db = selectOne('postgres', ctx.config.postgres, name);
  let asWritten: Promise<BaseTarFacts> | undefined;
  const m = await backupPostgresBase(
    { name: db.name, url: postgresUrl(ctx, db), serverMajor: db.pitr.serverMajor },
    { repo: ctx.repo, log: ctx.log, now: ctx.now, env: ctx.env, signal: ctx.signal, config: carriedConfig(ctx.config), asWritten: (facts) => (asWritten = facts) },
  );
  const d = m.details as unknown as BaseDetails;
  // Verified as soon as it lands (levels 1-3: the stored bytes, PostgreSQL's own manifest, the
  // WAL after it), not only by the monthly drill: retention and the window then rest on a
  // proven base, and a damaged one pages tonight instead of at restore time.
  const entry = await findBackup(ctx.repo, 'postgres', baseCatalogName(db.name), m.id);
  const { verifyPostgresBase } = await import('../../verify/base-verify.js');
  // Level 2 from the tar as it was written (level 1 proves the stored bytes are those): the
  // stored gigabyte is not decompressed a second time.
  const v = await verifyPostgresBase(entry, db.name, { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal }, asWritten);
  // As verify --base does: a failure pages as BackupVerifyFailed of this database.
  if (!v.ok) ctx.metrics.verifyFailed('postgres', db.name);
  return {
    exitCode: v.ok ? EXIT.ok : EXIT.failed,
    json: { results: [{ component: 'postgres', name: db.name, ok: v.ok, id: m.id, bytes: m.payload.bytes, startLsn: d.startLsn, stopLsn: d.stopLsn, timeline: d.timeline, verification: v }] },
    text: `postgres/${db.name} base backup ${m.id}: ${formatBytes(m.payload.bytes)}, WAL ${d.startLsn} .. ${d.stopLsn} on timeline ${d.timeline}, stop segment ${d.stopSegment} archived; ${v.ok ? `verified (level ${v.levelPassed})` : `VERIFY FAILED: ${v.failure}`}`,
  };
}

export interface BaseRestoreRequest {
  name?: string | undefined;
  backupId: string;
  pgdata: string;
  target: PitrTarget;
  start?: { port: number } | undefined;
  keepArchiving?: boolean;
  configPath: string;
}

/**
 * `opsctl restore postgres ID|latest --base --pgdata DIR [--to …] [--start --port P]`.
 * The target is read first (64 for one that cannot be right), then the base backup that
 * can reach it is chosen (2, naming the reachable window, when none can), then the whole
 * path recovery will take is checked against the archive, every timeline and history
 * file included: all before anything is written. With --start, where the server stopped
 * is checked against the target before success is reported.
 */
export async function restoreBaseCommand(ctx: JobContext, request: BaseRestoreRequest): Promise<CommandOutcome> {
  const db = selectOne('postgres', ctx.config.postgres, request.name);
  const target = parseTarget(request.target);
  const all = await listBackups(ctx.repo, 'postgres', baseCatalogName(db.name));
  pickBackup(all, 'postgres', baseCatalogName(db.name), request.backupId); // a missing or broken id is named by the catalogue
  const entry = chooseBase(all, request.backupId, target, `postgres/${db.name}`);
  const d = entry.manifest!.details as unknown as BaseDetails;
  const status = await walStatus(ctx.repo, db.name, { now: ctx.now() });
  const plan = await recoveryPath(ctx.repo, db.name, d, status);
  // Segments fetched ahead wait beside the restored data directory, not in a shared temp directory.
  const spool = path.join(path.dirname(path.resolve(request.pgdata)), `.${path.basename(request.pgdata)}.wal-fetch`);
  const result = await restorePostgresBase(
    entry,
    {
      pgdata: request.pgdata,
      target: request.target,
      restoreCommand: restoreCommandFor(request.configPath, db.name, ctx.env, spool),
      prefetch: { spool, name: db.name, source: await restoreSpoolSource(request.configPath, ctx.env) },
      start: request.start,
      keepArchiving: request.keepArchiving ?? false,
      endSegment: plan.endSegment,
      streamed: plan.streamedSegment ? { name: db.name, segment: plan.streamedSegment } : undefined,
      // The timeline whose whole path was checked above, not 'latest': a timeline that appears
      // in the archive while recovery runs is not followed unchecked, and PostgreSQL does not
      // ask restore_command for the next history file at start-up (a Node start each).
      timeline: plan.timeline,
      onProgress: progressOf(ctx, `restore postgres/${db.name} (base ${entry.id})`),
    },
    { repo: ctx.repo, log: ctx.log, env: ctx.env, signal: ctx.signal },
  );
  const to = request.target.time ?? request.target.name ?? request.target.lsn ?? 'the end of the archive';
  return {
    exitCode: EXIT.ok,
    json: result,
    text: `postgres/${db.name} base backup ${entry.id} restored into ${result.pgdata}, recovering to ${to} along timeline ${plan.steps.map((p) => p.timeline).join(' -> ')}${
      result.started
        ? `: started and promoted in ${formatDuration(result.seconds)}\n  asked:   ${to}\n  stopped: ${result.recovery}${result.stopped?.lastReplayed ? `\n  last transaction replayed: committed ${result.stopped.lastReplayed}` : ''}${result.stopped?.promotedTimeline ? `\n  promoted onto timeline ${result.stopped.promotedTimeline}` : ''}`
        : `; start it with pg_ctl -D ${result.pgdata} start`
    }`,
  };
}

/**
 * `opsctl restore postgres ID|latest --base --target DB [--to …]`: a database as it was at a
 * moment, where a data directory is of no use (a Fargate task, a managed server as target):
 * the base backup is recovered to the moment on a scratch cluster of its own (checked like
 * any restore --base --start: it stops exactly there or fails), the configured database is
 * copied from it into the target (created, or refused unless --confirm repeats its name),
 * every table's rows are compared, and the scratch cluster is stopped and removed.
 */
export async function restoreBaseIntoDatabaseCommand(ctx: JobContext, request: Omit<BaseRestoreRequest, 'pgdata' | 'start'> & { into: string; confirm?: string | undefined; clean?: boolean; workDir?: string | undefined }): Promise<CommandOutcome> {
  const db = selectOne('postgres', ctx.config.postgres, request.name);
  parseTarget(request.target); // a target that cannot be right is refused (64) before anything else
  const live = postgresUrl(ctx, db);
  const targetUrl = /^postgres(ql)?:\/\//.test(request.into) ? request.into : withDatabase(live, request.into);
  const owner = scratchOwner();
  const parent = await mkdtemp(path.join(request.workDir ?? os.tmpdir(), 'ops-pitr-into-'));
  if (owner) await chown(parent, owner.uid, owner.gid);
  const pgdata = path.join(parent, 'data');
  const port = await freePort();
  try {
    const restored = await restoreBaseCommand(ctx, { ...request, pgdata, start: { port } });
    const recovery = restored.json as { backupId: string; recovery?: string; stopped?: { lastReplayed: string | null } };
    const copied = await copyDatabase(`postgresql://postgres@127.0.0.1:${port}/${encodeURIComponent(databaseOf(live))}`, { targetUrl, confirm: request.confirm, clean: request.clean ?? false }, { log: ctx.log, env: ctx.env, signal: ctx.signal });
    const to = request.target.time ?? request.target.name ?? request.target.lsn ?? 'the end of the archive';
    return {
      exitCode: copied.mismatches.length === 0 ? EXIT.ok : EXIT.failed,
      json: { backupId: recovery.backupId, target: copied.target, createdDatabase: copied.createdDatabase, asked: to, recovery: recovery.recovery, lastReplayed: recovery.stopped?.lastReplayed ?? null, compared: copied.compared, mismatches: copied.mismatches },
      text: `postgres/${db.name} as at ${to} (base backup ${recovery.backupId}; ${recovery.recovery}${recovery.stopped?.lastReplayed ? `, last transaction committed ${recovery.stopped.lastReplayed}` : ''}) copied into ${copied.target}: ${copied.compared} tables, ${copied.mismatches.length === 0 ? 'row counts equal' : `${copied.mismatches.length} differ, e.g. ${copied.mismatches[0]!.table}`}`,
    };
  } finally {
    await stopCluster(pgdata, owner ?? { uid: 0, gid: 0 }, ctx.env);
    await rm(parent, { recursive: true, force: true });
  }
}

/** `opsctl verify postgres --base [ID|latest]`: the base backup's checksum and files, and the WAL chain after it. */
export async function verifyBaseCommand(ctx: JobContext, id: string, name?: string): Promise<CommandOutcome> {
  const db = selectOne('postgres', ctx.config.postgres, name);
  const entry = await findBackup(ctx.repo, 'postgres', baseCatalogName(db.name), id);
  const { verifyPostgresBase } = await import('../../verify/base-verify.js');
  const verification = await verifyPostgresBase(entry, db.name, { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal });
  // A failure pages as BackupVerifyFailed of this database; a success leaves the dump's own verification gauge alone.
  if (!verification.ok) ctx.metrics.verifyFailed('postgres', db.name);
  return verifyOutcome([{ component: 'postgres', name: `${db.name} (base)`, backupId: entry.id, ok: verification.ok, verification }]);
}

import type { Manifest } from './manifest.js';
import { writeBackup, writtenManifest } from './engine.js';
import { zstdVersion } from './codec.js';
import { connectPostgres, libpqEnvironment } from '../postgres/connect.js';
import { serverInfo } from '../postgres/introspect.js';
import { runTool, startTool } from '../process/tool.js';
import { parsePgToolVersion, toolPath } from '../process/tools.js';
import { maskUrl } from '../util/mask.js';
import { parseWalName, segmentOfLsn, walPrefix } from '../wal/names.js';
import { decodeWalObject } from '../wal/object.js';
import type { Repository } from '../repository/repository.js';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pollArchive, waitArchived } from '../wal/archive.js';
import type { BackupDeps } from './postgres-backup.js';
import { OpsError } from '../errors.js';
import { scanTar } from './tar-scan.js';
import { baseTarReader, type BaseTarFacts } from './base-tar.js';

export const BASE_PAYLOAD = 'base.tar';

/** zstd level 1 with two threads: fast enough to keep up with pg_basebackup on two cores. */
const ENCODE = { level: 1, threads: 2 } as const;
/** The first pg_basebackup with --compress=client-zstd. */
const CLIENT_ZSTD_MAJOR = 15;

import { describeMissing, missingPitrPrivileges } from '../postgres/pitr-privileges.js';
import { baseCatalogName } from './layout.js';
import { archiveSystemId } from '../wal/system-id.js';
import { WalClusterMismatchError } from '../wal/errors.js';

export { baseCatalogName };

export interface BaseDetails {
  kind: 'base';
  startLsn: string;
  stopLsn: string;
  timeline: number;
  /** The WAL segment holding the stop LSN: the base backup is consistent only once it is archived. */
  stopSegment: string;
  walArchived: boolean;
  serverVersion: string;
  /** wal_segment_size of the server (16 MiB unless initdb chose otherwise). */
  segmentBytes: number;
  /** What pg_basebackup copies, before compression: every database's size and the shared catalogue (the S3 part size follows it). */
  clusterBytes?: number;
  /** pg_control_system().system_identifier: which cluster's WAL this base backup can replay (absent before 2026-12). */
  systemId?: string;
}

export class BaseBackupError extends OpsError {
  constructor(message: string, cause?: unknown) {
    super('BASE_BACKUP_FAILED', message, { cause });
    this.name = 'BaseBackupError';
  }
}

/**
 * The WAL range from the backup's own files: `backup_label` (START WAL LOCATION, START
 * TIMELINE; the first member) and `backup_manifest` (WAL-Ranges, End-LSN; the last).
 * pg_basebackup writing to stdout prints neither point, so the tar is read as it passes.
 */
export function walRange(label: string, manifest: string): { startLsn: string; timeline: number; stopLsn: string } {
  const start = /START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/.exec(label)?.[1];
  const timeline = /START TIMELINE: (\d+)/.exec(label)?.[1];
  let ranges: { Timeline: number; 'Start-LSN': string; 'End-LSN': string }[] = [];
  try {
    ranges = (JSON.parse(manifest) as { 'WAL-Ranges'?: typeof ranges })['WAL-Ranges'] ?? [];
  } catch {
    // reported below
  }
  const last = ranges[ranges.length - 1];
  if (!start || !timeline || !last) throw new BaseBackupError('the base backup holds no backup_label with START WAL LOCATION or no backup_manifest with WAL-Ranges: not a pg_basebackup 13+ tar');
  return { startLsn: start, timeline: Number(timeline), stopLsn: last['End-LSN'] };
}

/** The WAL range from a backup history file (`<segment>.<offset>.backup`): what the server wrote at the backup's end. */
export function historyFileRange(text: string): { startLsn: string; timeline: number; stopLsn: string; label: string } | undefined {
  const start = /^START WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(text)?.[1];
  const stop = /^STOP WAL LOCATION: ([0-9A-F]+\/[0-9A-F]+)/m.exec(text)?.[1];
  const timeline = /^START TIMELINE: (\d+)/m.exec(text)?.[1];
  const label = /^LABEL: (.*)$/m.exec(text)?.[1];
  if (!start || !stop || !timeline || label === undefined) return undefined;
  return { startLsn: start, stopLsn: stop, timeline: Number(timeline), label };
}

/**
 * Finds this backup's history file in the archive by its label: named after the start
 * segment, which is at or after `walAt` (where WAL was before the backup began), on the
 * same timeline and log id or the next. Waited for (bounded): PostgreSQL archives it
 * before pg_basebackup returns, but an archive_command may be slow.
 */
async function historyRange(repo: Repository, name: string, label: string, walAt: string, timeoutMs: number): Promise<{ startLsn: string; timeline: number; stopLsn: string }> {
  const at = parseWalName(walAt)!;
  const tl = walAt.slice(0, 8);
  const logs = [at.segment!.log, at.segment!.log + 1].map((l) => `${tl}${l.toString(16).toUpperCase().padStart(8, '0')}`);
  const seen = new Set<string>();
  const found = await pollArchive(async () => {
    for (const prefix of logs) {
      const objects = (await repo.list(`${walPrefix(name)}${prefix}`)).map((o) => o.key).filter((k) => k.endsWith('.backup.zst') && !seen.has(k));
      for (const key of objects.sort().reverse()) {
        const file = path.basename(key, '.zst');
        if (file < walAt) continue;
        seen.add(key);
        const object = await repo.getBytes(key);
        if (!object) continue;
        const range = historyFileRange((await decodeWalObject(file, object)).content.toString('utf8'));
        if (range?.label === label) return range;
      }
    }
    return undefined;
  }, timeoutMs);
  if (!found) throw new BaseBackupError(`the backup history file of this base backup (label "${label}") did not reach the archive within ${timeoutMs / 1000} s: is archive_command set to opsctl wal push --name ${name}? Without the WAL the base backup cannot be restored`);
  return found;
}

/**
 * A physical base backup over the replication protocol: `pg_basebackup -Ft -D -` (one tar
 * with PostgreSQL's own backup_manifest appended), streamed through the same engine as
 * every backup, so no file access on the database host is needed (a Fargate task can take
 * it). WAL is not included (-X none): it comes from the archive, and the backup counts as
 * complete only once the segment holding its stop LSN is archived (waited for, bounded).
 */
export async function backupPostgresBase(
  target: { name: string; url: string; serverMajor?: number | undefined },
  deps: BackupDeps & {
    walWaitMs?: number;
    segmentBytes?: number;
    /** Given the tar's reading as it is written (base-tar.ts): the backup command's verification then need not decode the stored tar again. */
    asWritten?: (facts: Promise<BaseTarFacts>) => void;
  },
): Promise<Manifest> {
  const env = deps.env ?? process.env;
  const tool = toolPath('pg_basebackup', env);
  const [info, version, zstd] = await Promise.all([
    (async () => {
      const c = await connectPostgres(target.url, 'ops-automation-base');
      try {
        const i = await serverInfo(c);
        const seg = await c.query<{ setting: string }>(`select setting from pg_settings where name = 'wal_segment_size'`);
        // On a primary, where WAL is now: the backup's history file will be named after a segment from here on.
        const at = i.inRecovery ? undefined : (await c.query<{ f: string }>('select pg_walfile_name(pg_current_wal_lsn()) as f')).rows[0]?.f;
        // Named now, not on the drill's first run: pg_basebackup needs REPLICATION; the drill, two grants.
        // The configuration says which major's binaries will start this base backup (the stack
        // checked the image has them): a server of another major is a configuration to fix.
        if (target.serverMajor !== undefined && i.major !== target.serverMajor) throw new BaseBackupError(`${target.name} is PostgreSQL ${i.major} but its pitr.serverMajor says ${target.serverMajor}: set pitr.serverMajor to ${i.major} (and check the job image carries it) before base backups are taken`);
        // Refused before a byte is copied: the archive under this name holds another cluster's WAL.
        const systemId = (await c.query<{ id: string }>('select system_identifier::text as id from pg_control_system()')).rows[0]?.id;
        const archived = await archiveSystemId(deps.repo, target.name);
        if (systemId && archived && archived !== systemId) throw new WalClusterMismatchError(target.name, archived, systemId, `the server ${maskUrl(target.url)}`);
        const missing = await missingPitrPrivileges(c);
        if (missing.some((m) => m.what.startsWith('the REPLICATION'))) throw new BaseBackupError(`the role ${describeMissing(missing.filter((m) => m.what.startsWith('the REPLICATION')))}`);
        if (missing.length > 0) deps.log.warn(`base backup of ${target.name}: the role ${describeMissing(missing)}`);
        return { ...i, segmentBytes: Number(seg.rows[0]?.setting ?? 16 << 20), walAt: at, clusterBytes: await clusterBytes(c, i.databaseBytes), systemId };
      } finally {
        await c.end().catch(() => undefined);
      }
    })(),
    runTool('pg_basebackup', tool, ['--version'], env).then(parsePgToolVersion),
    zstdVersion(),
  ]);
  const { dbname, env: childEnv } = libpqEnvironment(target.url, env);
  let running: ReturnType<typeof startTool> | undefined;
  let watcher: ReturnType<typeof scanTar> | undefined;
  // On a primary the server itself writes the backup's WAL range into a backup history file
  // and archives it before pg_basebackup returns; the tar then never passes through this
  // process (1.1 GB of tar cost 0.7 s through it here). A standby writes no history file:
  // its tar is scanned on the way for backup_label and backup_manifest.
  const label = info.walAt ? `ops-automation ${target.name} ${randomUUID()}` : undefined;
  // From a primary, pg_basebackup 15+ compresses as it writes (libzstd, in its own process):
  // the uncompressed tar never crosses a pipe. Piped into a zstd process, the same 1.1 GB tar
  // took 3.57 s against 2.72-3.02 s (pgbench -s 70, here). A standby's tar is scanned
  // uncompressed (above), so a zstd process compresses it after.
  const compressedBy = label && version.major >= CLIENT_ZSTD_MAJOR ? 'pg_basebackup' : 'zstd';
  // The compressed tar, as it is stored, also decoded (a zstd process beside) and read (a thread: base-tar.ts).
  const tar = deps.asWritten ? baseTarReader('zstd') : undefined;
  if (tar) deps.asWritten!(tar.facts);
  const written = writeBackup({
    config: deps.config,
    repo: deps.repo,
    component: 'postgres',
    name: baseCatalogName(target.name),
    payloadName: BASE_PAYLOAD,
    streamCodec: 'zstd',
    encode: ENCODE,
    log: deps.log,
    ...(deps.now ? { now: deps.now } : {}),
    signal: deps.signal,
    onProgress: deps.onProgress,
    // pg_basebackup copies the whole cluster, every database and tablespace, not the one
    // configured: parts sized from one database failed at S3's 10,000-part limit (58 GiB at 6 MiB).
    sizeHint: Math.ceil(info.clusterBytes * 1.1),
    start() {
      const args = [`--dbname=${dbname}`, '--pgdata=-', '--format=tar', '--wal-method=none', '--checkpoint=fast', '--no-password', ...(label ? [`--label=${label}`] : [])];
      if (compressedBy === 'pg_basebackup') args.push(`--compress=client-zstd:level=${ENCODE.level},workers=${ENCODE.threads}`);
      running = startTool('pg_basebackup', tool, args, { env: childEnv });
      const stdout = running.child.stdout!;
      if (label) return { stream: stdout, producers: [running.done], stop: () => running?.kill(), fromProcess: true, encoded: compressedBy === 'pg_basebackup' };
      const scan = (watcher = scanTar(new Set(['backup_label', 'backup_manifest'])));
      // The scan sees each chunk as it passes on to the compressor (a listener, not a second stream).
      stdout.on('data', (chunk: Buffer) => scan.push(chunk));
      stdout.once('end', () => scan.end());
      return { stream: stdout, producers: [running.done, scan.done], stop: () => running?.kill() };
    },
    async describe(written) {
      const waitMs = deps.walWaitMs ?? 120_000;
      const points = label
        ? await historyRange(deps.repo, target.name, label, info.walAt!, waitMs)
        : walRange(watcher!.files.get('backup_label')?.toString('utf8') ?? '', watcher!.files.get('backup_manifest')?.toString('utf8') ?? '');
      const stopSegment = segmentOfLsn(points.timeline, points.stopLsn, info.segmentBytes);
      // The server switches to a new segment at the end of a base backup; wait for the archiver to hand it over.
      const walArchived = await waitArchived(deps.repo, target.name, stopSegment, waitMs);
      if (!walArchived) throw new BaseBackupError(`WAL segment ${stopSegment} (holding the base backup's stop LSN ${points.stopLsn}) did not reach the archive within ${waitMs / 1000} s: is archive_command set to opsctl wal push --name ${target.name}? Without it the base backup cannot be restored`);
      const details: BaseDetails = { kind: 'base', ...points, stopSegment, walArchived, serverVersion: info.version, segmentBytes: info.segmentBytes, clusterBytes: info.clusterBytes, ...(info.systemId ? { systemId: info.systemId } : {}) };
      return {
        ...writtenManifest(written, 'postgres', target.name, {
          streamCodec: 'zstd',
          compression: compressedBy === 'pg_basebackup' ? `pg_basebackup --compress=client-zstd:level=${ENCODE.level},workers=${ENCODE.threads}` : `zstd -${ENCODE.level} -T${ENCODE.threads}`,
          format: 'pg_basebackup-tar',
        }),
        tools: { pg_basebackup: version.version, zstd },
        source: { database: info.database, serverVersion: info.version, url: maskUrl(target.url) },
        details: { ...details },
      };
    },
    tap: tar?.input,
  });
  try {
    return (await written).manifest;
  } catch (error) {
    tar?.kill();
    throw error;
  }
}

/**
 * The cluster's size as pg_basebackup will copy it: every database (pg_database_size
 * counts all its tablespaces) and the shared catalogue. A database the role may not size
 * (no CONNECT, no pg_read_all_stats) counts by the one configured database's size at least.
 */
async function clusterBytes(c: Awaited<ReturnType<typeof connectPostgres>>, fallback: number): Promise<number> {
  const { rows } = await c.query<{ sized: string; unsized: string }>(
    `select coalesce(sum(pg_database_size(oid)) filter (where ok), 0)::text as sized, count(*) filter (where not ok)::text as unsized
       from (select oid, has_database_privilege(oid, 'CONNECT') or pg_has_role('pg_read_all_stats', 'member') as ok from pg_database) d`,
  );
  const { rows: g } = await c.query<{ b: string }>(`select coalesce(pg_tablespace_size('pg_global'), 0)::text as b`).catch(() => ({ rows: [{ b: '0' }] }));
  return Number(rows[0]!.sized) + Number(rows[0]!.unsized) * fallback + Number(g[0]!.b);
}

import type { Manifest } from './manifest.js';
import { writeBackup } from './engine.js';
import { zstdVersion } from './codec.js';
import { connectPostgres, libpqEnvironment } from '../postgres/connect.js';
import { serverInfo } from '../postgres/introspect.js';
import { runTool, startTool } from '../process/tool.js';
import { parsePgToolVersion, toolPath } from '../process/tools.js';
import { maskUrl } from '../util/mask.js';
import { segmentOfLsn } from '../wal/names.js';
import { waitArchived } from '../wal/archive.js';
import type { BackupDeps } from './postgres-backup.js';
import { OpsError } from '../errors.js';
import { PassThrough } from 'node:stream';
import { scanTar } from './tar-scan.js';

export const BASE_PAYLOAD = 'base.tar';

/** Base backups sit beside the dumps, in a catalogue of their own: `postgres/<name>/base/<id>/`. */
export const baseCatalogName = (name: string) => `${name}/base`;

export interface BaseDetails {
  kind: 'base';
  startLsn: string;
  stopLsn: string;
  timeline: number;
  /** The WAL segment holding the stop LSN: the base backup is consistent only once it is archived. */
  stopSegment: string;
  walArchived: boolean;
  serverVersion: string;
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

/**
 * A physical base backup over the replication protocol: `pg_basebackup -Ft -D -` (one tar
 * with PostgreSQL's own backup_manifest appended), streamed through the same engine as
 * every backup, so no file access on the database host is needed (a Fargate task can take
 * it). WAL is not included (-X none): it comes from the archive, and the backup counts as
 * complete only once the segment holding its stop LSN is archived (waited for, bounded).
 */
export async function backupPostgresBase(target: { name: string; url: string }, deps: BackupDeps & { walWaitMs?: number; segmentBytes?: number }): Promise<Manifest> {
  const env = deps.env ?? process.env;
  const tool = toolPath('pg_basebackup', env);
  const [info, version, zstd] = await Promise.all([
    (async () => {
      const c = await connectPostgres(target.url, 'ops-automation-base');
      try {
        const i = await serverInfo(c);
        const seg = await c.query<{ setting: string }>(`select setting from pg_settings where name = 'wal_segment_size'`);
        return { ...i, segmentBytes: Number(seg.rows[0]?.setting ?? 16 << 20) };
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
  const { manifest } = await writeBackup({
    config: deps.config,
    repo: deps.repo,
    component: 'postgres',
    name: baseCatalogName(target.name),
    payloadName: BASE_PAYLOAD,
    streamCodec: 'zstd',
    encode: { level: 1, threads: 2 },
    log: deps.log,
    ...(deps.now ? { now: deps.now } : {}),
    signal: deps.signal,
    onProgress: deps.onProgress,
    sizeHint: info.databaseBytes,
    start() {
      running = startTool('pg_basebackup', tool, [`--dbname=${dbname}`, '--pgdata=-', '--format=tar', '--wal-method=none', '--checkpoint=fast', '--no-password'], { env: childEnv });
      watcher = scanTar(new Set(['backup_label', 'backup_manifest']));
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      running.child.stdout!.pipe(out);
      running.child.stdout!.pipe(watcher.sink);
      return { stream: out, producers: [running.done, watcher.done], stop: () => running?.kill() };
    },
    async describe(written) {
      const points = walRange(watcher!.files.get('backup_label')?.toString('utf8') ?? '', watcher!.files.get('backup_manifest')?.toString('utf8') ?? '');
      const stopSegment = segmentOfLsn(points.timeline, points.stopLsn, info.segmentBytes);
      // The server switches to a new segment at the end of a base backup; wait for the archiver to hand it over.
      const walArchived = await waitArchived(deps.repo, target.name, stopSegment, deps.walWaitMs ?? 120_000);
      if (!walArchived) throw new BaseBackupError(`WAL segment ${stopSegment} (holding the base backup's stop LSN ${points.stopLsn}) did not reach the archive within ${(deps.walWaitMs ?? 120_000) / 1000} s: is archive_command set to opsctl wal push --name ${target.name}? Without it the base backup cannot be restored`);
      const details: BaseDetails = { kind: 'base', ...points, stopSegment, walArchived, serverVersion: info.version };
      return {
        formatVersion: 1,
        id: written.id,
        component: 'postgres',
        name: target.name,
        payload: { key: written.key, bytes: written.bytes, sha256: written.sha256, streamCodec: 'zstd', compression: 'zstd -1 -T2', format: 'pg_basebackup-tar' },
        startedAt: written.startedAt.toISOString(),
        finishedAt: written.finishedAt.toISOString(),
        durationSeconds: (written.finishedAt.getTime() - written.startedAt.getTime()) / 1000,
        tools: { pg_basebackup: version.version, zstd },
        source: { database: info.database, serverVersion: info.version, url: maskUrl(target.url) },
        details: { ...details, segmentBytes: info.segmentBytes },
      };
    },
  });
  return manifest;
}

import { listBackups } from '../backup/catalog.js';
import { baseCatalogName } from '../backup/postgres-base.js';
import { errorMessage } from '../errors.js';
import type { JobContext } from '../jobs/context.js';
import { postgresUrl } from '../jobs/endpoints.js';
import { withPostgres } from '../postgres/connect.js';
import { keptBaseStarts, walStatus } from '../wal/status.js';

/** Point-in-time recovery of one database: what the alarms and `opsctl status` need. */
export interface PitrFreshness {
  database: string;
  state: 'ok' | 'stale' | 'gap' | 'missing' | 'error';
  newestSegment: { file: string; ageSeconds: number } | null;
  missingSegments: number;
  baseBackup: { id: string; ageSeconds: number } | null;
  /** From the oldest restorable base backup's end to the newest archived segment: any moment inside can be recovered. */
  window: { from: string; to: string } | null;
  /** pg_stat_archiver on the live server: archive_command failures since its statistics reset. */
  archiveFailures: number | null;
  /** The newest passed point-in-time drill (recorded on base backups): DrillStale watches it like the dumps' drills. */
  drill: { lastSuccessAt: string; ageSeconds: number } | null;
  detail: string;
}

export async function checkPitr(ctx: JobContext): Promise<PitrFreshness[]> {
  const now = ctx.now();
  const out: PitrFreshness[] = [];
  for (const db of ctx.config.postgres.filter((d) => d.pitr.enabled)) {
    const row: PitrFreshness = { database: db.name, state: 'ok', newestSegment: null, missingSegments: 0, baseBackup: null, window: null, archiveFailures: null, drill: null, detail: '' };
    try {
      const wal = await walStatus(ctx.repo, db.name, { now, thresholdSeconds: ctx.config.alerts.walArchiveStaleMinutes * 60, bases: await keptBaseStarts(ctx.repo, db.name) });
      row.newestSegment = wal.newest ? { file: wal.newest.file, ageSeconds: wal.newest.ageSeconds } : null;
      row.missingSegments = wal.timelines.reduce((n, t) => n + t.missingCount, 0);
      const all = await listBackups(ctx.repo, 'postgres', baseCatalogName(db.name));
      const passed = all.flatMap((e) => (e.drill?.ok ? [e.drill.drilledAt] : [])).sort().at(-1);
      if (passed) row.drill = { lastSuccessAt: passed, ageSeconds: Math.round((now.getTime() - new Date(passed).getTime()) / 1000) };
      const bases = all.filter((e) => e.manifest && !e.broken && e.verification?.ok !== false);
      const newest = bases[0];
      const oldest = bases[bases.length - 1];
      if (newest?.manifest) row.baseBackup = { id: newest.id, ageSeconds: Math.round((now.getTime() - new Date(newest.manifest.finishedAt).getTime()) / 1000) };
      if (oldest?.manifest && wal.newest) row.window = { from: oldest.manifest.finishedAt, to: wal.newest.archivedAt };
      row.archiveFailures = await withPostgres(postgresUrl(ctx, db), async (c) => Number((await c.query<{ n: string }>('select failed_count::text as n from pg_stat_archiver')).rows[0]?.n ?? 0)).catch(() => null);
      if (!wal.newest) [row.state, row.detail] = ['missing', 'nothing archived: is archive_command set to opsctl wal push --name ' + db.name + '?'];
      else if (row.missingSegments > 0) [row.state, row.detail] = ['gap', wal.problems[0] ?? `${row.missingSegments} segments missing`];
      else if (!row.baseBackup) [row.state, row.detail] = ['missing', 'no base backup: opsctl backup postgres --base'];
      else if (wal.warnings.length > 0) [row.state, row.detail] = ['stale', wal.warnings[0]!];
      else if (row.baseBackup.ageSeconds > ctx.config.alerts.baseBackupStaleDays * 86_400) [row.state, row.detail] = ['stale', `newest base backup older than ${ctx.config.alerts.baseBackupStaleDays} days`];
      else row.detail = `recoverable from ${row.window!.from} to ${row.window!.to}`;
    } catch (error) {
      [row.state, row.detail] = ['error', errorMessage(error)];
    }
    out.push(row);
  }
  return out;
}

import path from 'node:path';
import { listBackups } from '../../backup/catalog.js';
import { selectOne, type JobContext } from '../../jobs/context.js';
import { pitrInfo, type PitrInfo } from '../../restore/recovery-windows.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import { shellQuote } from '../../util/shell-quote.js';
import { EXIT, renderTable, type CommandOutcome, type ExitCode } from '../output.js';

interface DumpInfo {
  id: string;
  takenAt: string;
  bytes: number;
  verified: string;
}

interface DatabaseInfo {
  name: string;
  pitr: Omit<PitrInfo, 'bases' | 'wal'> & { wal: { first: string | null; newest: string | null; newestAgeSeconds: number | null; problems: string[] } } | null;
  dumps: DumpInfo[];
  /** The exact commands, with this configuration file. */
  commands: { what: string; command: string }[];
  state: 'ok' | 'degraded' | 'nothing restorable';
}

/**
 * `opsctl info [--name N]` (pgBackRest's `info`): per database, everything a restore can
 * start from: every window base backups and the WAL archive reach (per base backup, cut
 * where a restore would stop), the restore points opsctl made, the dumps, and the exact
 * restore commands. Exit 0 when every database has something restorable and no window is
 * cut, 1 when a window is cut or a base backup cannot be used, 2 when a database has
 * nothing restorable.
 */
export async function infoCommand(ctx: JobContext, options: { name?: string | undefined; configPath: string }): Promise<CommandOutcome> {
  const dbs = options.name ? [selectOne('postgres', ctx.config.postgres, options.name)] : ctx.config.postgres;
  const config = shellQuote(path.resolve(options.configPath));
  const results: DatabaseInfo[] = [];
  for (const db of dbs) {
    const dumps = (await listBackups(ctx.repo, 'postgres', db.name))
      .filter((b) => b.manifest && !b.broken)
      .map((b) => ({ id: b.id, takenAt: b.manifest!.finishedAt, bytes: b.manifest!.payload.bytes, verified: b.verification ? (b.verification.ok ? `L${b.verification.levelPassed}` : 'FAILED') : 'no' }));
    const info = db.pitr.enabled ? await pitrInfo(ctx.repo, db.name, ctx.now()) : undefined;
    const usable = info?.windows.filter((w) => w.to && !w.problem) ?? [];
    const commands: DatabaseInfo['commands'] = [];
    // Restore commands pick the database by --name where the configuration holds more than one.
    const nameArg = ctx.config.postgres.length > 1 ? ` --name ${shellQuote(db.name)}` : '';
    const base = `opsctl --config ${config} restore postgres latest --base --pgdata /PATH --start --port 5433${nameArg}`;
    if (usable.length > 0) {
      const oldest = usable.reduce((a, b) => (a.from.time < b.from.time ? a : b));
      // Streamed chunks a restore to the end replays move the window's end to their last upload.
      const streamedAt = info!.streamed?.reachable ? info!.streamed.uploadedAt : '';
      const newestEnd = [...usable.map((w) => w.to!.archivedAt ?? ''), streamedAt].sort().at(-1);
      commands.push({ what: 'to the end of the archive', command: base });
      commands.push({ what: `to a time (from ${oldest.from.time} to about ${newestEnd || 'the newest archived WAL'})`, command: `${base} --to 'YYYY-MM-DD HH:MM:SS+00'` });
      const point = info!.restorePoints.find((p) => p.reachable);
      if (point) commands.push({ what: `to a restore point (${point.name}, made ${point.at})`, command: `${base} --to-name ${shellQuote(point.name)}` });
    }
    if (dumps.length > 0) commands.push({ what: `the newest dump (${dumps[0]!.takenAt})`, command: `opsctl --config ${config} restore postgres latest --target DATABASE${nameArg}` });
    const cut = info?.windows.some((w) => w.cut || w.problem) ?? false;
    results.push({
      name: db.name,
      pitr: info
        ? {
            name: info.name,
            systemId: info.systemId,
            windows: info.windows,
            restorePoints: info.restorePoints,
            streamed: info.streamed,
            wal: { first: info.wal.timelines[0]?.first ?? null, newest: info.wal.newest?.file ?? null, newestAgeSeconds: info.wal.newest?.ageSeconds ?? null, problems: info.wal.problems },
          }
        : null,
      dumps,
      commands,
      state: commands.length === 0 ? 'nothing restorable' : cut || (info && usable.length === 0) ? 'degraded' : 'ok',
    });
  }
  const exitCode: ExitCode = results.some((r) => r.state === 'nothing restorable') ? EXIT.failed : results.some((r) => r.state === 'degraded') ? EXIT.degraded : EXIT.ok;
  return { exitCode, json: { repository: ctx.repo.url, databases: results }, text: results.map(render).join('\n\n') };
}

function render(r: DatabaseInfo): string {
  const lines = [`postgres/${r.name}: ${r.state}`];
  if (r.pitr) {
    const w = r.pitr.wal;
    lines.push(`  cluster ${r.pitr.systemId ?? 'not recorded yet'}; WAL ${w.first ?? '-'} .. ${w.newest ?? '-'}${w.newestAgeSeconds !== null ? `, newest archived ${formatDuration(w.newestAgeSeconds)} ago` : ''}`);
    for (const p of w.problems) lines.push(`  problem: ${p}`);
    lines.push(
      indent(
        renderTable(r.pitr.windows, [
          { header: 'BASE BACKUP', value: (x) => x.baseId },
          { header: 'TIMELINES', value: (x) => x.timelines.join(' -> ') },
          { header: 'FROM (consistent)', value: (x) => `${x.from.time} ${x.from.lsn}` },
          { header: 'TO (archived)', value: (x) => (x.to ? `${x.to.archivedAt ?? '?'} ${x.to.segment}` : '-') },
          { header: 'NOTE', value: (x) => x.problem ?? x.cut ?? '' },
        ]),
      ),
    );
    const s = r.pitr.streamed;
    if (s) lines.push(`  streamed by wal receive: ${s.segment} to LSN ${s.lsn}, uploaded ${s.uploadedAt}: ${s.reachable ? 'a restore to the end replays it, up to its last whole record' : 'not next to an archived window: no restore reaches it'}`);
    if (r.pitr.restorePoints.length > 0) {
      lines.push(
        indent(
          renderTable(r.pitr.restorePoints, [
            { header: 'RESTORE POINT', value: (p) => p.name },
            { header: 'LSN', value: (p) => p.lsn },
            { header: 'TIMELINE', value: (p) => String(p.timeline), align: 'right' },
            { header: 'MADE', value: (p) => p.at },
            { header: 'REACHABLE', value: (p) => (p.reachable ? 'yes' : 'no (its WAL is gone or cut)') },
          ]),
        ),
      );
    }
  } else lines.push('  point-in-time recovery: not enabled (pitr.enabled)');
  lines.push(
    r.dumps.length > 0
      ? indent(
          renderTable(r.dumps, [
            { header: 'DUMP', value: (d) => d.id },
            { header: 'TAKEN', value: (d) => d.takenAt },
            { header: 'SIZE', value: (d) => formatBytes(d.bytes), align: 'right' },
            { header: 'VERIFIED', value: (d) => d.verified },
          ]),
        )
      : '  dumps: none',
  );
  if (r.commands.length > 0) {
    lines.push('  restore:');
    for (const c of r.commands) lines.push(`    ${c.what}:\n      ${c.command}`);
  } else lines.push('  nothing restorable: no dump, and no base backup with the WAL to make it consistent');
  return lines.join('\n');
}

const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

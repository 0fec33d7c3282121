import path from 'node:path';
import { METRIC } from '../../metrics/samples.js';
import { pgWalUsage } from '../../wal/host-usage.js';
import { selectOne, type JobContext } from '../../jobs/context.js';
import { defaultSpool, walFetch, walPush } from '../../wal/archive.js';
import { WalNotArchivedError } from '../../wal/errors.js';
import { keptBaseStarts, walStatus } from '../../wal/status.js';
import { formatDuration } from '../../util/format.js';
import { EXIT, renderTable, type CommandOutcome } from '../output.js';

const database = (ctx: JobContext, name?: string) => selectOne('postgres', ctx.config.postgres, name).name;

/**
 * `archive_command = 'opsctl wal push %p --name N'`. With a metrics sink configured, every
 * call reports pg_wal's backlog, size and free space, failed pushes above all: those are
 * the calls made while pg_wal fills.
 */
export async function walPushCommand(ctx: JobContext, file: string, options: { name?: string; parallel?: number; batch?: number; spool?: string; source: string; resident?: boolean; configPath?: string }): Promise<CommandOutcome> {
  const { parallel, batch, spool, source } = options;
  const name = database(ctx, options.name);
  // Looked at before the push: the backlog this call faces, this file included.
  const usage = ctx.metrics.active ? pgWalUsage(path.dirname(file)).catch((error: Error) => void ctx.log.warn(`pg_wal usage not measured: ${error.message}`)) : undefined;
  let result;
  try {
    result = await walPush(file, { name, source, ...(parallel ? { parallel } : {}), ...(batch ? { batch } : {}), ...(spool ? { spool } : {}) }, { repo: ctx.repo, log: ctx.log, now: ctx.now });
  } finally {
    const u = await usage;
    if (u) {
      const labels = { name };
      ctx.metrics.gauge(METRIC.walReadyFiles, u.readyFiles, labels, 'Count');
      ctx.metrics.gauge(METRIC.walReadyBytes, u.readyBytes, labels, 'Bytes');
      ctx.metrics.gauge(METRIC.walReadyBytesLimit, ctx.config.alerts.walBacklogMaxBytes, labels, 'Bytes');
      ctx.metrics.gauge(METRIC.pgWalBytes, u.pgWalBytes, labels, 'Bytes');
      ctx.metrics.gauge(METRIC.pgWalFsFreeBytes, u.fsFreeBytes, labels, 'Bytes');
      ctx.metrics.gauge(METRIC.pgWalFsSizeBytes, u.fsSizeBytes, labels, 'Bytes');
      // Sent by main() once the command ends, failed or not.
    }
  }
  // This call paid for Node; the next ones need not: a resident pusher takes them (wal/resident.ts).
  if (options.resident && options.configPath) {
    const { ensureResident } = await import('../../wal/resident.js');
    await ensureResident({ spool: spool ?? defaultSpool(name), name, configPath: options.configPath, source, parallel: parallel ?? 4, log: ctx.log }).catch((error: Error) => ctx.log.warn(`wal push: the resident pusher was not started: ${error.message}`));
  }
  const ahead = result.ahead.length > 0 ? `, ${result.ahead.length} more pushed ahead` : '';
  return { exitCode: EXIT.ok, json: result, text: `${result.file}: ${result.outcome} (${result.bytes} bytes)${ahead}` };
}

/** `opsctl wal push --serve`: the resident pusher of one spool (started by `wal push --resident`), until idle or stopped. */
export async function walServeCommand(ctx: JobContext, options: { name?: string; parallel: number; batch: number; spool?: string; idle: number; source: string }): Promise<CommandOutcome> {
  const name = database(ctx, options.name);
  const { serveResident } = await import('../../wal/resident.js');
  const s = await serveResident(
    { name, spool: options.spool ?? defaultSpool(name), source: options.source, idleMs: options.idle * 1000, parallel: options.parallel, batch: options.batch },
    { repo: ctx.repo, log: ctx.log, now: ctx.now, signal: ctx.signal },
  );
  return { exitCode: EXIT.ok, json: s, text: s.alreadyRunning ? 'wal push --serve: another resident serves this spool' : `wal push --serve: ${s.pushed} pushed, ${s.failed} failed` };
}

/** `restore_command = 'opsctl wal fetch %f %p --name N'`: exit 1 at once for a name the archive does not hold. */
export async function walFetchCommand(ctx: JobContext, file: string, dest: string, options: { name?: string; ahead?: number; spool?: string; source: string }): Promise<CommandOutcome> {
  try {
    const r = await walFetch(file, dest, { name: database(ctx, options.name), source: options.source, ...(options.ahead !== undefined ? { ahead: options.ahead } : {}), ...(options.spool ? { spool: options.spool } : {}) }, { repo: ctx.repo, log: ctx.log });
    return { exitCode: EXIT.ok, json: r, text: `${r.file}: ${r.bytes} bytes, sha256 checked` };
  } catch (error) {
    if (!(error instanceof WalNotArchivedError)) throw error;
    return { exitCode: EXIT.degraded, json: { file, archived: false }, text: error.message };
  }
}

/** Archived range per timeline, gaps, newest segment age: exit 0 ok, 1 stale, 2 gap or nothing archived. */
export async function walStatusCommand(ctx: JobContext, options: { name?: string }): Promise<CommandOutcome> {
  const name = database(ctx, options.name);
  const s = await walStatus(ctx.repo, name, { now: ctx.now(), bases: await keptBaseStarts(ctx.repo, name) });
  const table = renderTable(s.timelines, [
    { header: 'TIMELINE', value: (t) => String(t.timeline), align: 'right' },
    { header: 'FIRST', value: (t) => t.first },
    { header: 'LAST', value: (t) => t.last },
    { header: 'SEGMENTS', value: (t) => String(t.segments), align: 'right' },
    { header: 'MISSING', value: (t) => (t.missingCount ? `${t.missingCount} (${t.missing[0]}…)` : '0'), align: 'right' },
  ]);
  const lines = [
    `wal/${s.name}: ${s.newest ? `newest ${s.newest.file}, archived ${formatDuration(s.newest.ageSeconds)} ago` : 'nothing archived'}; history files for timelines ${s.histories.join(', ') || '-'}; cluster ${s.systemId ?? 'not recorded yet (the next push records it)'}`,
    table,
    ...s.problems.map((p) => `problem: ${p}`),
    ...s.warnings.map((w) => `warning: ${w}`),
  ];
  return { exitCode: s.problems.length > 0 ? EXIT.failed : s.warnings.length > 0 ? EXIT.degraded : EXIT.ok, json: s, text: lines.join('\n') };
}

/** `opsctl wal check [--name N] [--timeout S]`: pgBackRest's check. Exit 0 when a segment switched out now came back intact, else 2. */
export async function walCheckCommand(ctx: JobContext, options: { name?: string; timeout: number }): Promise<CommandOutcome> {
  const db = selectOne('postgres', ctx.config.postgres, options.name);
  const { walCheck } = await import('../../wal/check.js');
  const { postgresUrl } = await import('../../jobs/endpoints.js');
  const r = await walCheck(ctx.repo, db.name, postgresUrl(ctx, db), { timeoutMs: options.timeout * 1000 });
  const table = renderTable(r.steps, [
    { header: 'CHECK', value: (s) => s.check },
    { header: 'RESULT', value: (s) => (s.ok ? 'ok' : 'FAILED') },
    { header: 'DETAIL', value: (s) => s.detail },
  ]);
  const head = r.ok ? `wal/${db.name}: archiving works: ${r.segment} reached the archive in ${r.archivedSeconds?.toFixed(1)} s and came back intact` : `wal/${db.name}: archiving is broken: ${r.steps.find((s) => !s.ok)?.detail}`;
  return { exitCode: r.ok ? EXIT.ok : EXIT.failed, json: r, text: `${head}\n${table}` };
}

/** `opsctl wal receive [--name N] [--create-slot]`: until SIGTERM/SIGINT; exit 0 when stopped on request with everything received uploaded. */
export async function walReceiveCommand(ctx: JobContext, options: { name?: string; createSlot?: boolean; dir?: string; interval?: number }): Promise<CommandOutcome> {
  const db = selectOne('postgres', ctx.config.postgres, options.name);
  const { WalReceiveError } = await import('../../wal/errors.js');
  if (!db.pitr.enabled || !db.pitr.receive.enabled) throw new WalReceiveError('WAL_RECEIVE_OFF', `streaming is off for ${db.name}: set postgres[].pitr.enabled and postgres[].pitr.receive.enabled to true in the configuration`, { exitCode: 64 });
  const [{ walReceive, defaultSlotName }, { postgresUrl }, os] = await Promise.all([import('../../wal/receive.js'), import('../../jobs/endpoints.js'), import('node:os')]);
  const slot = db.pitr.receive.slot ?? defaultSlotName(db.name);
  const dir = options.dir ?? path.join(os.tmpdir(), `ops-wal-receive-${process.getuid?.() ?? 0}`, db.name);
  ctx.log.info(`wal receive ${db.name}: slot ${slot}, uploading every ${options.interval ?? db.pitr.receive.intervalMs} ms from ${dir}`);
  const s = await walReceive(
    { name: db.name, url: postgresUrl(ctx, db), slot, dir, intervalMs: options.interval ?? db.pitr.receive.intervalMs, createSlot: options.createSlot ?? false, synchronous: db.pitr.receive.synchronous },
    { repo: ctx.repo, log: ctx.log, env: ctx.env, metrics: ctx.metrics, now: ctx.now, signal: ctx.signal },
  );
  const to = s.uploadedTo ? `${s.uploadedTo.segment} up to byte ${s.uploadedTo.offset}` : 'nothing streamed';
  return { exitCode: EXIT.ok, json: s, text: `wal receive ${db.name} stopped: ${s.archived} file(s) archived, ${s.chunks} chunk(s) (${s.chunkBytes} bytes) uploaded, pg_receivewal restarted ${s.restarts} time(s); the repository holds ${to}` };
}

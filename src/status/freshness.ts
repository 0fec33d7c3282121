import { baseCatalogName } from '../backup/layout.js';
import { listBackups } from '../backup/catalog.js';
import type { Component } from '../backup/layout.js';
import { errorMessage } from '../errors.js';
import type { JobContext } from '../jobs/context.js';
import { postgresUrl } from '../jobs/endpoints.js';
import { METRIC } from '../metrics/samples.js';
import { partitionStatus } from '../partitions/status.js';
import { readPartitionRecord } from '../partitions/record.js';
import { checkPitr, type PitrFreshness } from './pitr-freshness.js';

export type FreshnessState = 'ok' | 'stale' | 'missing' | 'unverified' | 'verify-failed' | 'drill-failed' | 'error';

/** The newest restore drill of a target (of any of its backups), and the newest one that passed. */
export interface DrillFreshness {
  backupId: string;
  at: string;
  ok: boolean;
  ageSeconds: number;
  restoreSeconds: number;
  failure?: string;
  lastSuccess: { at: string; ageSeconds: number } | null;
  thresholdSeconds: number;
}

export interface BackupFreshness {
  component: Component;
  name: string;
  state: FreshnessState;
  thresholdSeconds: number;
  newest: { id: string; finishedAt: string; ageSeconds: number; bytes: number; verifiedLevel: number | null; verifyOk: boolean | null; drillOk: boolean | null } | null;
  lastVerified: { id: string; at: string; ageSeconds: number } | null;
  drill: DrillFreshness | null;
  detail: string;
}

export interface PartitionFreshness {
  database: string;
  state: FreshnessState | 'coverage-low';
  thresholdSeconds: number;
  lastSuccessAt: string | null;
  ageSeconds: number | null;
  coverage: Record<string, number>;
  /** Per table: periods ahead, the oldest partition, rows sitting in the default partition. */
  tables: { table: string; coverage: number; partitions: number; oldest: string | null; rowsInDefault: number | null }[];
  minCoverage: number;
  detail: string;
}

export interface FreshnessReport {
  at: string;
  backups: BackupFreshness[];
  partitions: PartitionFreshness[];
  /** Databases with point-in-time recovery enabled (postgres[].pitr). */
  pitr: PitrFreshness[];
}

function thresholdFor(ctx: JobContext, component: Component): number {
  const a = ctx.config.alerts;
  return component === 'knowledge' ? a.knowledgeBackupStaleDays * 86_400 : (component === 'redis' ? a.redisBackupStaleHours : a.postgresBackupStaleHours) * 3600;
}

/**
 * What the stale alarms need, read from the repository (and the databases' catalogues for
 * coverage): the age of the newest complete and newest verified backup of every
 * configured target, and of the last successful partition run.
 */
export async function checkFreshness(ctx: JobContext): Promise<FreshnessReport> {
  const now = ctx.now();
  const targets: { component: Component; name: string }[] = [
    ...ctx.config.postgres.map((t) => ({ component: 'postgres' as const, name: t.name })),
    ...ctx.config.redis.map((t) => ({ component: 'redis' as const, name: t.name })),
    ...ctx.config.knowledge.map((t) => ({ component: 'knowledge' as const, name: t.name })),
  ];
  const backups: BackupFreshness[] = [];
  for (const t of targets) {
    const thresholdSeconds = thresholdFor(ctx, t.component);
    try {
      const entries = await listBackups(ctx.repo, t.component, t.name);
      const newest = entries.find((e) => e.manifest);
      const verified = entries.find((e) => e.manifest && e.verification?.ok);
      const age = (iso: string) => Math.round((now.getTime() - new Date(iso).getTime()) / 1000);
      const drills = entries.flatMap((e) => (e.drill ? [e.drill] : [])).sort((a, b) => b.drilledAt.localeCompare(a.drilledAt));
      const lastDrill = drills[0];
      const lastGood = drills.find((d) => d.ok);
      const row: BackupFreshness = {
        ...t,
        state: 'ok',
        thresholdSeconds,
        newest: newest?.manifest
          ? {
              id: newest.id,
              finishedAt: newest.manifest.finishedAt,
              ageSeconds: age(newest.manifest.finishedAt),
              bytes: newest.manifest.payload.bytes,
              verifiedLevel: newest.verification?.levelPassed ?? null,
              verifyOk: newest.verification?.ok ?? null,
              drillOk: newest.drill?.ok ?? null,
            }
          : null,
        lastVerified: verified?.verification ? { id: verified.id, at: verified.verification.verifiedAt, ageSeconds: age(verified.verification.verifiedAt) } : null,
        drill: lastDrill
          ? {
              backupId: lastDrill.backupId,
              at: lastDrill.drilledAt,
              ok: lastDrill.ok,
              ageSeconds: age(lastDrill.drilledAt),
              restoreSeconds: lastDrill.restoreSeconds,
              ...(lastDrill.failure ? { failure: lastDrill.failure } : {}),
              lastSuccess: lastGood ? { at: lastGood.drilledAt, ageSeconds: age(lastGood.drilledAt) } : null,
              thresholdSeconds: ctx.config.alerts.drillStaleDays * 86_400,
            }
          : null,
        detail: '',
      };
      if (!row.newest) {
        // A database with base backups but no dump yet is not without a backup: say what is there.
        const bases = t.component === 'postgres' ? (await listBackups(ctx.repo, 'postgres', baseCatalogName(t.name))).filter((e) => e.manifest && !e.broken) : [];
        [row.state, row.detail] = ['missing', bases.length > 0 ? `no dump in the repository yet (its ${bases.length} base backups restore to a point in time: opsctl backups list postgres)` : 'no complete backup in the repository'];
      }
      else if (row.newest.ageSeconds > thresholdSeconds) [row.state, row.detail] = ['stale', `newest backup older than ${thresholdSeconds / 3600} h`];
      else if (row.newest.verifyOk === false) [row.state, row.detail] = ['verify-failed', newest?.verification?.failure ?? 'verification failed'];
      else if (row.newest.verifyOk === null) [row.state, row.detail] = ['unverified', 'newest backup not verified yet'];
      else if (row.drill && !row.drill.ok) [row.state, row.detail] = ['drill-failed', `restore drill of ${row.drill.backupId} failed: ${row.drill.failure ?? 'failed'}`];
      backups.push(row);
    } catch (error) {
      backups.push({ ...t, state: 'error', thresholdSeconds, newest: null, lastVerified: null, drill: null, detail: errorMessage(error) });
    }
  }

  const partitions: PartitionFreshness[] = [];
  for (const db of ctx.config.postgres.filter((d) => (d.partitions?.tables.length ?? 0) > 0)) {
    const thresholdSeconds = ctx.config.alerts.partitionCreationStaleDays * 86_400;
    const minCoverage = db.partitions?.minCoverage ?? 0;
    const row: PartitionFreshness = { database: db.name, state: 'ok', thresholdSeconds, lastSuccessAt: null, ageSeconds: null, coverage: {}, tables: [], minCoverage, detail: '' };
    try {
      const record = await readPartitionRecord(ctx.repo, db.name);
      if (record) {
        row.lastSuccessAt = record.at;
        row.ageSeconds = Math.round((now.getTime() - new Date(record.at).getTime()) / 1000);
      }
      for (const t of await partitionStatus(postgresUrl(ctx, db), db, ctx.config.timezone, now)) {
        row.coverage[t.table] = t.coverage;
        row.tables.push({ table: t.table, coverage: t.coverage, partitions: t.partitions, oldest: t.oldest, rowsInDefault: t.rowsInDefault });
      }
      const low = Object.entries(row.coverage).filter(([, c]) => c < minCoverage);
      if (row.ageSeconds === null) [row.state, row.detail] = ['missing', 'no successful partition run recorded'];
      else if (row.ageSeconds > thresholdSeconds) [row.state, row.detail] = ['stale', `last success over ${thresholdSeconds / 86_400} days ago`];
      if (low.length > 0) [row.state, row.detail] = ['coverage-low', `${low.map(([t, c]) => `${t} ${c}`).join(', ')} below ${minCoverage} ahead`];
    } catch (error) {
      [row.state, row.detail] = ['error', errorMessage(error)];
    }
    partitions.push(row);
  }
  return { at: now.toISOString(), backups, partitions, pitr: await checkPitr(ctx) };
}

/**
 * Age gauges and re-pushed last-success timestamps, so staleness alerts see fresh
 * samples every run whatever the jobs do. A target that never succeeded reports a last
 * success at the epoch: its age is "forever", and the stale alert fires.
 */
export function emitFreshness(ctx: JobContext, report: FreshnessReport): void {
  const m = ctx.metrics;
  for (const b of report.backups) {
    const labels = { component: b.component, name: b.name };
    m.gauge(METRIC.backupLastSuccess, b.newest ? new Date(b.newest.finishedAt).getTime() / 1000 : 0, labels);
    m.gauge(METRIC.backupAge, b.newest ? b.newest.ageSeconds : new Date(report.at).getTime() / 1000, labels, 'Seconds');
    m.gauge(METRIC.verifyLastSuccess, b.lastVerified ? new Date(b.lastVerified.at).getTime() / 1000 : 0, labels);
    m.gauge(METRIC.verifyAge, b.lastVerified ? b.lastVerified.ageSeconds : new Date(report.at).getTime() / 1000, labels, 'Seconds');
    // A target never drilled reports a last success at the epoch: DrillStale fires for it.
    const good = b.drill?.lastSuccess;
    m.gauge(METRIC.drillLastSuccess, good ? new Date(good.at).getTime() / 1000 : 0, labels);
    m.gauge(METRIC.drillAge, good ? good.ageSeconds : new Date(report.at).getTime() / 1000, labels, 'Seconds');
  }
  for (const p of report.partitions) {
    m.gauge(METRIC.partitionLastSuccess, p.lastSuccessAt ? new Date(p.lastSuccessAt).getTime() / 1000 : 0, { database: p.database });
    m.gauge(METRIC.partitionAge, p.ageSeconds ?? new Date(report.at).getTime() / 1000, { database: p.database }, 'Seconds');
    for (const [table, coverage] of Object.entries(p.coverage)) m.gauge(METRIC.partitionCoverage, coverage, { database: p.database, table });
  }
  for (const p of report.pitr ?? []) {
    const labels = { name: p.database };
    const epochAge = new Date(report.at).getTime() / 1000;
    m.gauge(METRIC.walNewestAge, p.newestSegment?.ageSeconds ?? epochAge, labels, 'Seconds');
    m.gauge(METRIC.walMissingSegments, p.missingSegments, labels, 'Count');
    m.gauge(METRIC.baseBackupAge, p.baseBackup?.ageSeconds ?? epochAge, labels, 'Seconds');
    if (p.archiveFailures !== null) m.gauge(METRIC.walArchiveFailures, p.archiveFailures, labels, 'Count');
    // The PITR drill under the labels its DrillFailed alarm uses; never drilled = the epoch, so DrillStale fires.
    const drillLabels = { component: 'postgres', name: `${p.database}-pitr` };
    m.gauge(METRIC.drillLastSuccess, p.drill ? new Date(p.drill.lastSuccessAt).getTime() / 1000 : 0, drillLabels);
    m.gauge(METRIC.drillAge, p.drill?.ageSeconds ?? epochAge, drillLabels, 'Seconds');
  }
  m.gauge(METRIC.freshnessLastRun, new Date(report.at).getTime() / 1000, {});
}

import { SEED_DEFAULTS } from '../config/defaults.js';
import { METRIC } from './samples.js';

/**
 * The alerts of DESIGN.md, defined once: the Prometheus rules file is generated from
 * this list (`npm run gen:alerts`, checked by a test) and the CDK alarms read the same
 * thresholds, so the two systems never disagree.
 */
export interface AlertDefinition {
  name: string;
  /** PromQL; true = firing. */
  expr: string;
  for: string;
  severity: 'critical' | 'warning';
  summary: string;
  description: string;
  runbook: string;
}

const A = SEED_DEFAULTS.alerts;
const H = 3600;
const D = 86_400;
/** Samples are pushed every 15 min by the freshness check; instant queries see 5 min. */
const WINDOW = '30m';

export const ALERTS: AlertDefinition[] = [
  stale('PostgresBackupStale', 'postgres', A.postgresBackupStaleHours * H, `${A.postgresBackupStaleHours} hours`, 'postgres-backup-stale.md'),
  stale('RedisBackupStale', 'redis', A.redisBackupStaleHours * H, `${A.redisBackupStaleHours} hours`, 'redis-backup-stale.md'),
  stale('KnowledgeBackupStale', 'knowledge', A.knowledgeBackupStaleDays * D, `${A.knowledgeBackupStaleDays} days`, 'knowledge-backup-stale.md'),
  {
    name: 'BackupFailed',
    expr: `max by (component, name) (increase(${METRIC.backupErrors}[1h])) > 0`,
    for: '0m',
    severity: 'critical',
    summary: 'A {{ $labels.component }} backup of {{ $labels.name }} failed',
    description: 'The backup job reported an error in the last hour; no manifest was written for it.',
    runbook: 'backup-failed.md',
  },
  {
    name: 'BackupVerifyFailed',
    expr: `max by (component, name) (increase(${METRIC.verifyErrors}[1h])) > 0`,
    for: '0m',
    severity: 'critical',
    summary: 'Verification of a {{ $labels.component }} backup of {{ $labels.name }} failed',
    description: 'The newest backup did not pass every verification level: it may not be restorable.',
    runbook: 'verify-failed.md',
  },
  {
    name: 'DrillFailed',
    expr: `max by (component, name) (increase(${METRIC.drillErrors}[1h])) > 0`,
    for: '0m',
    severity: 'critical',
    summary: 'The restore drill of {{ $labels.component }}/{{ $labels.name }} failed',
    description: 'Restoring the newest backup into a scratch database, server or directory failed, or the restored data differs from the backup.',
    runbook: 'drill-failed.md',
  },
  {
    name: 'DrillStale',
    expr: `(time() - max by (component, name) (max_over_time(${METRIC.drillLastSuccess}[${WINDOW}]))) > ${A.drillStaleDays * D}`,
    for: '0m',
    severity: 'warning',
    summary: `No successful restore drill of {{ $labels.component }}/{{ $labels.name }} for over ${A.drillStaleDays} days`,
    description: 'Last successful drill {{ $value | humanizeDuration }} ago: the backups are not proven restorable on the seeds\' monthly rhythm.',
    runbook: 'drill-stale.md',
  },
  {
    name: 'PartitionCreationStale',
    expr: `(time() - max by (database) (max_over_time(${METRIC.partitionLastSuccess}[${WINDOW}]))) > ${A.partitionCreationStaleDays * D}`,
    for: '0m',
    severity: 'critical',
    summary: `Partition maintenance of {{ $labels.database }} has not succeeded for over ${A.partitionCreationStaleDays} days`,
    description: 'Last success {{ $value | humanizeDuration }} ago; new rows may soon have no partition.',
    runbook: 'partition-creation-stale.md',
  },
  {
    name: 'PartitionManagementFailed',
    expr: `max by (database) (increase(${METRIC.partitionErrors}[1h])) > 0`,
    for: '0m',
    severity: 'critical',
    summary: 'Partition maintenance of {{ $labels.database }} failed',
    description: 'A table could not be maintained; the run result names it and why.',
    runbook: 'partition-management-failed.md',
  },
  {
    name: 'PartitionCoverageLow',
    expr: `min by (database, table) (max_over_time(${METRIC.partitionCoverage}[${WINDOW}])) < ${SEED_DEFAULTS.alerts.partitionCoverageMinPeriods}`,
    for: '0m',
    severity: 'warning',
    summary: '{{ $labels.database }}.{{ $labels.table }} has partitions for only {{ $value }} periods ahead',
    description: `Fewer than ${SEED_DEFAULTS.alerts.partitionCoverageMinPeriods} future partitions exist.`,
    runbook: 'partition-coverage-low.md',
  },
  {
    name: 'WalArchiveStale',
    expr: `min by (name) (max_over_time(${METRIC.walNewestAge}[${WINDOW}])) > ${A.walArchiveStaleMinutes * 60}`,
    for: '0m',
    severity: 'critical',
    summary: `No WAL segment of {{ $labels.name }} archived for over ${A.walArchiveStaleMinutes} minutes`,
    description: 'The newest archived segment is {{ $value | humanizeDuration }} old: a failure now loses everything since. archive_command may be failing, or archive_timeout is unset on a quiet server.',
    runbook: 'wal-archive-stale.md',
  },
  {
    name: 'WalArchiveGap',
    expr: `max by (name) (max_over_time(${METRIC.walMissingSegments}[${WINDOW}])) > 0`,
    for: '0m',
    severity: 'critical',
    summary: 'The WAL archive of {{ $labels.name }} misses {{ $value }} segment(s)',
    description: 'Point-in-time recovery cannot pass a missing segment: everything after it is unrecoverable until a new base backup is taken.',
    runbook: 'wal-archive-gap.md',
  },
  {
    name: 'WalPushFailed',
    expr: `max by (name) (increase(${METRIC.walArchiveFailures}[1h])) > 0`,
    for: '0m',
    severity: 'warning',
    summary: 'archive_command of {{ $labels.name }} failed in the last hour',
    description: 'PostgreSQL counts the failures (pg_stat_archiver.failed_count) and retries; WAL piles up in pg_wal until the push succeeds.',
    runbook: 'wal-push-failed.md',
  },
  {
    // Growth over the last 30 minutes of wal push reports (while archiving fails, PostgreSQL
    // calls it at least once a minute); 15 minutes sustained, so a checkpoint's burst of
    // pre-allocated segments does not page.
    name: 'WalDiskFilling',
    expr: `(min by (name) (${METRIC.pgWalFsFreeBytes}) - ${A.walDiskFillHours * H} * max by (name) (deriv(${METRIC.pgWalBytes}[30m]))) < 0`,
    for: '15m',
    severity: 'critical',
    summary: `pg_wal of {{ $labels.name }} would fill its disk within ${A.walDiskFillHours} hours`,
    description: 'At its growth of the last 30 minutes pg_wal outgrows the free space of its file system; when it is full PostgreSQL stops (PANIC). archive_command is failing or too slow, or a replication slot holds WAL.',
    runbook: 'wal-disk-filling.md',
  },
  {
    name: 'WalBacklogHigh',
    expr: `max by (name) (${METRIC.walReadyBytes}) > on (name) max by (name) (${METRIC.walReadyBytesLimit})`,
    for: '5m',
    severity: 'warning',
    summary: 'WAL of {{ $labels.name }} waits in pg_wal for archive_command: {{ $value | humanize1024 }}B',
    description: 'More WAL than alerts.walBacklogMaxBytes is not yet in the repository: a failure of the host now loses it, and pg_wal grows until the push catches up.',
    runbook: 'wal-backlog-high.md',
  },
  {
    name: 'WalReceiverDown',
    expr: `(time() - max by (name) (max_over_time(${METRIC.walReceiveHeartbeat}[1h]))) > 300`,
    for: '0m',
    severity: 'critical',
    summary: 'wal receive of {{ $labels.name }} has not reported for over 5 minutes',
    description: 'The receiver reports every 15 s while it runs. Without it the RPO falls back to archive_timeout, and its replication slot makes the primary keep WAL until its disk fills.',
    runbook: 'wal-receiver-down.md',
  },
  {
    name: 'WalReceiveLag',
    expr: `max by (name) (${METRIC.walReceiveLag}) > ${A.walReceiveLagSeconds}`,
    for: '2m',
    severity: 'critical',
    summary: 'The repository trails the WAL received for {{ $labels.name }} by {{ $value | humanizeDuration }}',
    description: `wal receive cannot upload (repository unreachable, credentials): streamed WAL waits on the receiver's disk, and a loss of the primary now loses more than ${A.walReceiveLagSeconds} seconds.`,
    runbook: 'wal-receive-lag.md',
  },
  {
    name: 'WalSlotRetained',
    expr: `max by (name) (${METRIC.walSlotRetainedBytes}) > ${A.walSlotRetainedMaxBytes} or min by (name) (${METRIC.walSlotSafeBytes}) < ${1024 ** 3}`,
    for: '5m',
    severity: 'warning',
    summary: 'The replication slot of {{ $labels.name }} holds WAL on the primary',
    description: 'The slot of wal receive keeps WAL the receiver has not confirmed: more than alerts.walSlotRetainedMaxBytes, or less than 1 GiB before max_slot_wal_keep_size invalidates it.',
    runbook: 'wal-slot-retained.md',
  },
  {
    name: 'BaseBackupStale',
    expr: `min by (name) (max_over_time(${METRIC.baseBackupAge}[${WINDOW}])) > ${A.baseBackupStaleDays * D}`,
    for: '0m',
    severity: 'warning',
    summary: `No base backup of {{ $labels.name }} for over ${A.baseBackupStaleDays} days`,
    description: 'Recovery replays every segment since the newest base backup: an old base makes it long (RTO) and keeps WAL that retention would drop.',
    runbook: 'base-backup-stale.md',
  },
  {
    name: 'FreshnessCheckerDead',
    expr: `absent_over_time(${METRIC.freshnessLastRun}[45m])`,
    for: '0m',
    severity: 'critical',
    summary: 'The freshness check has not reported for 45 minutes',
    description: 'Without it, staleness alerts cannot fire: treat every backup as unverified until it runs again.',
    runbook: 'freshness-checker-dead.md',
  },
];

function stale(name: string, component: string, seconds: number, human: string, runbook: string): AlertDefinition {
  return {
    name,
    expr: `(time() - max by (component, name) (max_over_time(${METRIC.backupLastSuccess}{component="${component}"}[${WINDOW}]))) > ${seconds}`,
    for: '0m',
    severity: 'critical',
    summary: `No ${component} backup of {{ $labels.name }} for over ${human}`,
    description: 'The newest complete backup is {{ $value | humanizeDuration }} old.',
    runbook,
  };
}

const q = (s: string) => JSON.stringify(s);

/** The Prometheus rules file (YAML). */
export function renderPrometheusRules(runbookBase = 'doc/runbooks/'): string {
  const lines = ['# Generated from src/metrics/alerts.ts by `npm run gen:alerts`: edit there, not here.', 'groups:', '  - name: ops-automation', '    rules:'];
  for (const a of ALERTS) {
    lines.push(
      `      - alert: ${a.name}`,
      `        expr: ${q(a.expr)}`,
      `        for: ${a.for}`,
      '        labels:',
      `          severity: ${a.severity}`,
      '        annotations:',
      `          summary: ${q(a.summary)}`,
      `          description: ${q(a.description)}`,
      `          runbook_url: ${q(runbookBase + a.runbook)}`,
    );
  }
  return lines.join('\n') + '\n';
}

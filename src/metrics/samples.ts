/** One value of one series, the form both sinks consume. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch. */
  timestampMs: number;
  unit: MetricUnitName;
  /**
   * A counter's 0 pushed just before its increment: a stateless job cannot keep a
   * running total, so each run writes a fresh 0 -> n pair that `increase()` sees.
   * CloudWatch skips it (it sums the increments itself).
   */
  counterBaseline?: boolean;
}

export type MetricUnitName = 'Seconds' | 'Bytes' | 'Count' | 'None';

/** DESIGN.md "Observability": the names, shared by CloudWatch and Prometheus. */
export const METRIC = {
  backupLastSuccess: 'backup_last_success_timestamp_seconds',
  backupLastSize: 'backup_last_size_bytes',
  backupDuration: 'backup_duration_seconds',
  backupErrors: 'backup_errors_total',
  backupAge: 'backup_age_seconds',
  verifyLastSuccess: 'backup_verify_last_success_timestamp_seconds',
  verifyLevel: 'backup_verify_level',
  verifyErrors: 'backup_verify_errors_total',
  verifyAge: 'backup_verify_age_seconds',
  drillLastSuccess: 'backup_drill_last_success_timestamp_seconds',
  drillRestoreSeconds: 'backup_drill_restore_seconds',
  drillErrors: 'backup_drill_errors_total',
  /** Seconds since the last successful drill (pushed by the freshness check: CloudWatch cannot look back 35 days). */
  drillAge: 'backup_drill_age_seconds',
  restoreSeconds: 'backup_restore_seconds',
  restoreErrors: 'backup_restore_errors_total',
  partitionLastSuccess: 'partition_last_success_timestamp_seconds',
  partitionAge: 'partition_age_seconds',
  partitionCreated: 'partition_created_total',
  partitionDropped: 'partition_dropped_total',
  partitionErrors: 'partition_errors_total',
  partitionSkipped: 'partition_skipped_total',
  partitionCoverage: 'partition_future_coverage_months',
  freshnessLastRun: 'ops_freshness_last_run_timestamp_seconds',
  /** PITR (pushed by the freshness check per database with postgres[].pitr.enabled). */
  walNewestAge: 'wal_newest_segment_age_seconds',
  walMissingSegments: 'wal_missing_segments',
  baseBackupAge: 'base_backup_age_seconds',
  /** pg_stat_archiver.failed_count of the live server: archive_command failures. */
  walArchiveFailures: 'wal_archive_failures',
  /** Pushed by `wal push` on the database host with every call that runs Node (src/wal/host-usage.ts). */
  walReadyFiles: 'wal_ready_files',
  walReadyBytes: 'wal_ready_bytes',
  /** The configured backlog limit (alerts.walBacklogMaxBytes), beside the backlog so the Prometheus rule needs no copy of it. */
  walReadyBytesLimit: 'wal_ready_bytes_limit',
  pgWalBytes: 'pg_wal_bytes',
  pgWalFsFreeBytes: 'pg_wal_fs_free_bytes',
  pgWalFsSizeBytes: 'pg_wal_fs_size_bytes',
  /** Pushed by `wal receive` every 15 s: alive, how far the repository trails what it received, the slot's hold on the primary. */
  walReceiveHeartbeat: 'wal_receive_heartbeat_timestamp_seconds',
  walReceiveLag: 'wal_receive_lag_seconds',
  walSlotRetainedBytes: 'wal_slot_retained_bytes',
  walSlotSafeBytes: 'wal_slot_safe_bytes',
  metricsPushFailures: 'ops_metrics_push_failures_total',
} as const;

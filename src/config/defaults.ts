/**
 * Thresholds and periods from the seeds (000, 002, 003), kept in one place: the
 * config schema takes its defaults from here, the Prometheus rules are checked against
 * these figures by a test, and the CDK alarms read them.
 */
export const SEED_DEFAULTS = {
  timezone: 'UTC',
  schedules: {
    partitions: 'cron(0 2 1 * ? *)',
    postgresBackup: 'cron(0 4 * * ? *)',
    redisBackup: 'cron(15 4 * * ? *)',
    knowledgeBackup: 'cron(0 1 ? * SUN *)',
    verify: 'cron(30 4 * * ? *)',
    drill: 'cron(0 6 2 * ? *)',
    /** Seed 003: a restore on the test stand monthly, per component. */
    redisDrill: 'cron(30 6 2 * ? *)',
    knowledgeDrill: 'cron(0 7 2 * ? *)',
    /** Seed 003: the whole-system disaster-recovery test quarterly (3 Jan, Apr, Jul, Oct). */
    drillAll: 'cron(0 8 3 1,4,7,10 ? *)',
    /** PITR (seed 003, level 2): a weekly base backup; WAL is pushed by the server itself. */
    baseBackup: 'cron(30 3 ? * SUN *)',
    pitrDrill: 'cron(30 7 2 * ? *)',
    status: 'rate(15 minutes)',
  },
  retentionDays: { postgres: 30, redis: 7, knowledge: 90, wal: 7 },
  keepVerified: 3,
  partitions: { ahead: 3, retentionMonths: 12 },
  alerts: {
    postgresBackupStaleHours: 26,
    redisBackupStaleHours: 26,
    knowledgeBackupStaleDays: 8,
    partitionCreationStaleDays: 35,
    partitionCoverageMinPeriods: 2,
    /** A monthly drill plus slack: older than this, DrillStale fires. */
    drillStaleDays: 35,
    /** Seed 003: hourly WAL archives; set archive_timeout below this on quiet servers. */
    walArchiveStaleMinutes: 60,
    baseBackupStaleDays: 8,
    /** Not from the seeds: 64 segments waiting for archive_command is an hour of a busy day's WAL stuck on the host. */
    walBacklogMaxBytes: 1024 ** 3,
    /** Not from the seeds: time enough to free space or fix archiving before PostgreSQL stops (PANIC on a full pg_wal). */
    walDiskFillHours: 2,
    /** Not from the seeds: wal receive's target is an RPO of seconds; a minute behind pages. */
    walReceiveLagSeconds: 60,
    /** Not from the seeds: WAL a replication slot holds on the primary before it warns (half of a typical max_slot_wal_keep_size). */
    walSlotRetainedMaxBytes: 8 * 1024 ** 3,
  },
} as const;

/** Bounds on every S3 request (not from the seeds): the schema's defaults, and the S3 client's when no config is at hand. */
export const S3_TIMEOUT_DEFAULTS = { requestTimeoutMs: 30_000, connectTimeoutMs: 5_000, maxAttempts: 3 } as const;

import * as z from 'zod';
import { S3_TIMEOUT_DEFAULTS, SEED_DEFAULTS } from './defaults.js';
import { inlineSecrets } from '../util/mask.js';

/** Names become S3 key segments and metric labels: keep them boring. */
const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'use 1-63 characters: lower-case letters, digits, "_" or "-"');

const cron = z
  .string()
  .refine(isScheduleExpression, 'expected an EventBridge expression such as "cron(0 4 * * ? *)" or "rate(15 minutes)"');

export function isScheduleExpression(value: string): boolean {
  const rate = /^rate\(\d+ (minute|minutes|hour|hours|day|days)\)$/.exec(value);
  if (rate) return true;
  const m = /^cron\((.+)\)$/.exec(value);
  if (!m?.[1]) return false;
  const fields = m[1].trim().split(/\s+/);
  if (fields.length !== 6) return false;
  // EventBridge requires "?" in exactly one of day-of-month and day-of-week.
  return (fields[2] === '?') !== (fields[4] === '?');
}

export function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

const timezone = z.string().refine(isTimeZone, 'unknown IANA time zone (e.g. "UTC", "Europe/Kyiv")');

/** Connection URLs in the config file must not carry a password: secrets come from the environment or Secrets Manager. */
const urlWithoutPassword = (schemes: string[]) =>
  z.string().superRefine((value, ctx) => {
    // Checked on the raw text first: a password holding "#" or "/" defeats a URL parser.
    const secrets = inlineSecrets(value);
    if (secrets.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `remove ${secrets.join(' and ')}: secrets belong in the environment (e.g. DATABASE_URL) or Secrets Manager (passwordSecretArn)`,
      });
      return;
    }
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a URL (expected ${schemes.join(' or ')}//...)` });
      return;
    }
    if (!schemes.includes(url.protocol)) {
      ctx.addIssue({ code: 'custom', message: `scheme must be ${schemes.join(' or ')}, got ${url.protocol}` });
    }
  });

const retention = (days: number) =>
  z
    .object({
      maxAgeDays: z.number().int().min(1).default(days),
      keepVerified: z.number().int().min(1).default(SEED_DEFAULTS.keepVerified),
    })
    .strict()
    .default({ maxAgeDays: days, keepVerified: SEED_DEFAULTS.keepVerified });

export const CODECS = ['zstd', 'gzip', 'none'] as const;
export type Codec = (typeof CODECS)[number];

const partitionTable = z
  .object({
    /** Parent table, optionally schema-qualified: `public.calls`. Quoted as identifiers, never pasted. */
    table: z.string().min(1),
    interval: z.enum(['day', 'week', 'month']).default('month'),
    ahead: z.number().int().min(1).max(120).default(SEED_DEFAULTS.partitions.ahead),
    /** Periods to keep; null = never drop from this table. */
    retention: z.number().int().min(1).nullable().default(null),
    /** Default by interval: `{table}_{YYYY}_{MM}`, `{table}_{IYYY}_w{IW}`, `{table}_{YYYY}_{MM}_{DD}`. */
    naming: z.string().optional(),
    timezone: timezone.optional(),
    archiveBeforeDrop: z.boolean().default(false),
    /** Create every missing period between the oldest kept partition and now (missed runs). */
    fillGaps: z.boolean().default(true),
  })
  .strict();

const postgresDatabase = z
  .object({
    name,
    url: urlWithoutPassword(['postgres:', 'postgresql:']).optional(),
    /** Environment variable that overrides `url` (may carry a password). */
    urlEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional(),
    passwordSecretArn: z.string().startsWith('arn:').optional(),
    backup: z
      .object({
        schedule: cron.default(SEED_DEFAULTS.schedules.postgresBackup),
        codec: z.enum(CODECS).default('zstd'),
        /** zstd level 1-19 or gzip level 1-9; codec default when absent. */
        level: z.number().int().min(0).max(19).optional(),
        threads: z.number().int().min(1).max(64).default(2),
        retention: retention(SEED_DEFAULTS.retentionDays.postgres),
      })
      .strict()
      .prefault({}),
    verify: z
      .object({ schedule: cron.default(SEED_DEFAULTS.schedules.verify) })
      .strict()
      .prefault({}),
    drill: z
      .object({ schedule: cron.default(SEED_DEFAULTS.schedules.drill) })
      .strict()
      .prefault({}),
    /** Point-in-time recovery: base backups and the WAL archive the server pushes into (opsctl wal push). */
    pitr: z
      .object({
        enabled: z.boolean().default(false),
        /**
         * The server's PostgreSQL major. A base backup starts only under its own major's server
         * binaries: the stack refuses a major its job image lacks (cdk/versions.ts
         * PG_SERVER_MAJORS), and a base backup refuses a server of another major.
         */
        serverMajor: z.number().int().min(12).max(99).optional(),
        baseBackup: z
          .object({ schedule: cron.default(SEED_DEFAULTS.schedules.baseBackup), retention: retention(SEED_DEFAULTS.retentionDays.postgres) })
          .strict()
          .prefault({}),
        /** WAL older than this goes, except what a kept base backup needs, and never a history file. */
        walRetentionDays: z.number().int().min(1).default(SEED_DEFAULTS.retentionDays.wal),
        drill: z
          .object({ schedule: cron.default(SEED_DEFAULTS.schedules.pitrDrill) })
          .strict()
          .prefault({}),
        /**
         * `opsctl wal receive`: streams WAL over a physical replication slot and uploads the open
         * segment's growth every intervalMs, for an RPO of seconds instead of archive_timeout. Off
         * by default; beside wal push, never instead of it.
         */
        receive: z
          .object({
            enabled: z.boolean().default(false),
            /** Default ops_receive_<name>. Created only by `wal receive --create-slot`. */
            slot: z.string().regex(/^[a-z0-9_]{1,63}$/, 'a replication slot name: lower-case letters, digits and _ (63 at most)').optional(),
            intervalMs: z.number().int().min(100).max(60_000).default(1_000),
            /** pg_receivewal --synchronous, for listing the receiver (application_name = the slot) in synchronous_standby_names. */
            synchronous: z.boolean().default(false),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    partitions: z
      .object({
        schedule: cron.default(SEED_DEFAULTS.schedules.partitions),
        minCoverage: z.number().int().min(0).default(SEED_DEFAULTS.alerts.partitionCoverageMinPeriods),
        lockTimeoutMs: z.number().int().min(10).max(60_000).default(1_000),
        lockRetries: z.number().int().min(0).max(50).default(5),
        /** Rows found in the default partition for a new range are moved in one transaction, up to this many. */
        moveDefaultRowsLimit: z.number().int().min(0).default(100_000),
        tables: z.array(partitionTable).default([]),
      })
      .strict()
      .optional(),
  })
  .strict();

const redisInstance = z
  .object({
    name,
    url: urlWithoutPassword(['redis:', 'rediss:']).optional(),
    urlEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional(),
    passwordSecretArn: z.string().startsWith('arn:').optional(),
    mode: z.enum(['rdb', 'logical']).default('rdb'),
    backup: z
      .object({
        schedule: cron.default(SEED_DEFAULTS.schedules.redisBackup),
        retention: retention(SEED_DEFAULTS.retentionDays.redis),
      })
      .strict()
      .prefault({}),
    drill: z
      .object({ schedule: cron.default(SEED_DEFAULTS.schedules.redisDrill) })
      .strict()
      .prefault({}),
  })
  .strict();

const knowledgeStore = z
  .object({
    name,
    /** A directory, or `s3://bucket/prefix`. */
    path: z.string().min(1).optional(),
    pathEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional(),
    backup: z
      .object({
        schedule: cron.default(SEED_DEFAULTS.schedules.knowledgeBackup),
        retention: retention(SEED_DEFAULTS.retentionDays.knowledge),
      })
      .strict()
      .prefault({}),
    drill: z
      .object({ schedule: cron.default(SEED_DEFAULTS.schedules.knowledgeDrill) })
      .strict()
      .prefault({}),
  })
  .strict();

export const configSchema = z
  .object({
    $schema: z.string().optional(),
    timezone: timezone.default(SEED_DEFAULTS.timezone),
    repository: z
      .object({
        /** `file:///abs`, `file://./rel` (relative to this file) or `s3://bucket/prefix`. */
        url: z.string().default('file://./backups'),
        kmsKeyId: z.string().optional(),
        partSizeMiB: z.number().int().min(5).max(512).default(6),
        queueSize: z.number().int().min(1).max(16).default(2),
        /** s3://: a request that sends or receives nothing for this long fails (and is retried). */
        requestTimeoutMs: z.number().int().min(100).max(600_000).default(S3_TIMEOUT_DEFAULTS.requestTimeoutMs),
        /** s3://: connecting (TCP + TLS) may take this long. */
        connectTimeoutMs: z.number().int().min(100).max(60_000).default(S3_TIMEOUT_DEFAULTS.connectTimeoutMs),
        /** s3://: attempts per request, the first included (the SDK backs off between them). */
        maxAttempts: z.number().int().min(1).max(10).default(S3_TIMEOUT_DEFAULTS.maxAttempts),
      })
      .strict()
      .prefault({}),
    postgres: z.array(postgresDatabase).default([]),
    redis: z.array(redisInstance).default([]),
    knowledge: z.array(knowledgeStore).default([]),
    /** `opsctl drill all` on its own schedule: the whole-system disaster-recovery drill. */
    drillAll: z
      .object({ schedule: cron.default(SEED_DEFAULTS.schedules.drillAll) })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        namespace: z.string().regex(/^[A-Za-z0-9_./#:-]{1,255}$/).default('OpsAutomation'),
        prometheus: z
          .object({
            url: z.string().url().optional(),
            urlEnv: z.string().default('OPS_PROMETHEUS_URL'),
            auth: z
              .discriminatedUnion('type', [
                z.object({ type: z.literal('none') }).strict(),
                z.object({ type: z.literal('basic'), username: z.string(), passwordEnv: z.string() }).strict(),
                z.object({ type: z.literal('bearer'), tokenEnv: z.string() }).strict(),
                z.object({ type: z.literal('sigv4'), region: z.string().optional() }).strict(),
              ])
              .default({ type: 'none' }),
            timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    alerts: z
      .object({
        postgresBackupStaleHours: z.number().positive().default(SEED_DEFAULTS.alerts.postgresBackupStaleHours),
        redisBackupStaleHours: z.number().positive().default(SEED_DEFAULTS.alerts.redisBackupStaleHours),
        knowledgeBackupStaleDays: z.number().positive().default(SEED_DEFAULTS.alerts.knowledgeBackupStaleDays),
        partitionCreationStaleDays: z.number().positive().default(SEED_DEFAULTS.alerts.partitionCreationStaleDays),
        drillStaleDays: z.number().positive().default(SEED_DEFAULTS.alerts.drillStaleDays),
        walArchiveStaleMinutes: z.number().positive().default(SEED_DEFAULTS.alerts.walArchiveStaleMinutes),
        baseBackupStaleDays: z.number().positive().default(SEED_DEFAULTS.alerts.baseBackupStaleDays),
        /** WalBacklogHigh: more than this many bytes of WAL waiting in pg_wal for archive_command. */
        walBacklogMaxBytes: z.number().int().positive().default(SEED_DEFAULTS.alerts.walBacklogMaxBytes),
        /** WalDiskFilling: pg_wal would fill its file system within this many hours at its present growth. */
        walDiskFillHours: z.number().positive().default(SEED_DEFAULTS.alerts.walDiskFillHours),
        /** WalReceiveLag: the repository trails what wal receive has received by more than this. */
        walReceiveLagSeconds: z.number().positive().default(SEED_DEFAULTS.alerts.walReceiveLagSeconds),
        /** WalSlotRetained: the receiver's slot holds more WAL than this on the primary. */
        walSlotRetainedMaxBytes: z.number().int().positive().default(SEED_DEFAULTS.alerts.walSlotRetainedMaxBytes),
        /** Where the runbooks are published (absolute, e.g. your repository's doc/runbooks/): HTML pages link there. Default: this installation's doc/runbooks/ as a file:// URL. */
        runbookBaseUrl: z.url().optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/**
 * Checks across entries, run on the raw document whether or not the schema passed, so
 * one validation reports every problem (zod skips refinements of invalid objects).
 */
export function crossEntryProblems(raw: unknown): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  if (typeof raw !== 'object' || raw === null) return problems;
  for (const key of ['postgres', 'redis', 'knowledge'] as const) {
    const items = (raw as Record<string, unknown>)[key];
    if (!Array.isArray(items)) continue;
    const seen = new Set<string>();
    items.forEach((item, i) => {
      const name = (item as { name?: unknown })?.name;
      if (typeof name !== 'string') return;
      if (seen.has(name)) problems.push({ path: `${key}.${i}.name`, message: `duplicate name "${name}"` });
      seen.add(name);
    });
  }
  return problems;
}

export type OpsConfigInput = z.input<typeof configSchema>;
export type RawOpsConfig = z.output<typeof configSchema>;
export type PostgresDatabaseConfig = RawOpsConfig['postgres'][number];
export type RedisInstanceConfig = RawOpsConfig['redis'][number];
export type KnowledgeStoreConfig = RawOpsConfig['knowledge'][number];
export type PartitionTableConfig = z.output<typeof partitionTable>;
export type RetentionConfig = PostgresDatabaseConfig['backup']['retention'];

import * as z from 'zod';
import { COMPONENTS } from './layout.js';

export const STREAM_CODECS = ['zstd', 'gzip', 'none'] as const;
export type StreamCodec = (typeof STREAM_CODECS)[number];

/** One table as the manifest lists it (exported for tests: the check in place must judge as this schema does). */
export const manifestTableSchema = z.object({
  schema: z.string(),
  name: z.string(),
  kind: z.enum(['table', 'partitioned', 'partition']),
  parent: z.string().nullable(),
  estimatedRows: z.number(),
});
export type ManifestTable = z.infer<typeof manifestTableSchema>;

const TABLE_KINDS: ReadonlySet<unknown> = new Set(manifestTableSchema.shape.kind.options);

function isTableEntry(t: unknown): t is ManifestTable {
  if (typeof t !== 'object' || t === null) return false;
  const e = t as Record<string, unknown>;
  return typeof e.schema === 'string' && typeof e.name === 'string' && TABLE_KINDS.has(e.kind) && (e.parent === null || typeof e.parent === 'string') && typeof e.estimatedRows === 'number';
}

/**
 * The manifest's tables, checked where they lie: z.array(manifestTableSchema) copied every entry into
 * a new object (at 50,000 tables about 30 ms and 7 MB of objects, the copies kept and the
 * parsed ones garbage, in every verify and restore). An entry that is not a table entry is
 * judged by manifestTableSchema, so the problems reported are word for word the same. Unlike the
 * copy, an entry keeps a field this version does not know.
 */
const tableList = z.array(z.unknown()).check((ctx) => {
  if (ctx.value.every(isTableEntry)) return;
  const judged = z.array(manifestTableSchema).safeParse(ctx.value);
  if (!judged.success) for (const issue of judged.error.issues) ctx.issues.push({ ...issue, input: ctx.value } as z.core.$ZodRawIssue);
}) as unknown as z.ZodType<ManifestTable[]>;

/** Written last: a backup exists only when its manifest does. */
export const manifestSchema = z.object({
  formatVersion: z.literal(1),
  id: z.string(),
  component: z.enum(COMPONENTS),
  name: z.string(),
  payload: z.object({
    key: z.string(),
    bytes: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** What wraps the whole payload stream; readers undo it before anything else. */
    streamCodec: z.enum(STREAM_CODECS),
    /** Human summary of compression, e.g. `zstd -1 -T2` or `pg_dump gzip -Z6`. */
    compression: z.string(),
    format: z.string(),
  }),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationSeconds: z.number(),
  tools: z.record(z.string(), z.string()),
  source: z.record(z.string(), z.unknown()),
  tables: tableList.optional(),
  details: z.record(z.string(), z.unknown()).optional(),
  /** The configuration the backup was taken with (connection strings masked, no secrets): `opsctl dr plan` reads it. */
  config: z.record(z.string(), z.unknown()).optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

export const LEVEL_NAMES = ['checksum', 'catalogue', 'full-read', 'restore-drill'] as const;

const levelResult = z.object({
  level: z.number().int().min(1).max(4),
  name: z.string(),
  ok: z.boolean(),
  detail: z.string().optional(),
});
export type LevelResult = z.infer<typeof levelResult>;

export const verificationSchema = z.object({
  formatVersion: z.literal(1),
  backupId: z.string(),
  component: z.enum(COMPONENTS),
  name: z.string(),
  verifiedAt: z.string(),
  ok: z.boolean(),
  /** Highest level passed in an unbroken run from level 1 (0 = none). */
  levelPassed: z.number().int().min(0).max(4),
  levels: z.array(levelResult),
  rowCounts: z.record(z.string(), z.number()).optional(),
  records: z.number().optional(),
  durationSeconds: z.number(),
  tools: z.record(z.string(), z.string()),
  failure: z.string().optional(),
});
export type Verification = z.infer<typeof verificationSchema>;

export const drillSchema = z.object({
  formatVersion: z.literal(1),
  backupId: z.string(),
  component: z.enum(COMPONENTS),
  name: z.string(),
  drilledAt: z.string(),
  ok: z.boolean(),
  /** Where the drill restored to: a scratch database, a scratch redis-server's address, a scratch directory. */
  scratchDatabase: z.string(),
  /** The restore's wall time: the measured RTO of this component. */
  restoreSeconds: z.number(),
  /** How long the comparison took after the restore. */
  checkSeconds: z.number().optional(),
  /** Drill time minus the backup's consistent time (its start): the RPO the backup allowed. */
  rpoSeconds: z.number().optional(),
  /** Tables (postgres), keys (redis) or entries (knowledge) compared. */
  compared: z.number(),
  mismatches: z.array(z.object({ table: z.string(), expected: z.number().nullable(), actual: z.number().nullable() })),
  /** What differed, as sentences (redis, knowledge; at most 20). */
  differences: z.array(z.string()).optional(),
  /** amcheck on the restored database (postgres): how many B-tree indexes and tables it read, or why it could not. */
  amcheck: z.object({ indexes: z.number(), tables: z.number(), findings: z.number(), skipped: z.string().optional() }).optional(),
  /** Schema of the live database against the restored one (postgres): a migration after the backup shows here. */
  schemaChanges: z.array(z.string()).optional(),
  /** Partitions attached on one side only (`live: public.calls_2026_12`): partition maintenance since the backup, not a migration. */
  partitionChanges: z.array(z.string()).optional(),
  /** Per-database key counts and value digests (redis), computed alike from the archive and the restored server. */
  digests: z.record(z.string(), z.object({ keys: z.number(), digest: z.string() })).optional(),
  /** The restore point a PITR drill made on the live server (a name `--to-name` can restore to while its WAL is kept). */
  restorePoint: z.object({ name: z.string(), lsn: z.string(), timeline: z.number(), at: z.string() }).optional(),
  failure: z.string().optional(),
});
export type Drill = z.infer<typeof drillSchema>;

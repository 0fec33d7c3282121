import * as z from 'zod';
import type { Repository } from '../repository/repository.js';

const recordSchema = z.object({ at: z.string(), coverage: z.record(z.string(), z.number()) });
export type PartitionRecord = z.infer<typeof recordSchema>;

/** Beside the database's backups, under a name that is not a backup id. */
const key = (database: string) => `postgres/${database}/partitions/last-success.json`;

/** The freshness check reads when partitions last succeeded from here (CloudWatch cannot look back 35 days). */
export async function writePartitionRecord(repo: Repository, database: string, record: PartitionRecord): Promise<void> {
  await repo.putBytes(key(database), JSON.stringify(record, null, 2) + '\n');
}

export async function readPartitionRecord(repo: Repository, database: string): Promise<PartitionRecord | undefined> {
  const bytes = await repo.getBytes(key(database));
  if (!bytes) return undefined;
  return recordSchema.parse(JSON.parse(bytes.toString('utf8')));
}

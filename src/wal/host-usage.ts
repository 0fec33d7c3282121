import { readdir, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { parseWalName } from './names.js';

/**
 * What fills the database host's disk while archiving falls behind (pgBackRest #2629,
 * WAL-G #1155): files PostgreSQL still waits to archive, all of pg_wal, and the free
 * space of the file system pg_wal lives on.
 */
export interface PgWalUsage {
  /** `.ready` files in archive_status/: handed to archive_command, not yet archived. */
  readyFiles: number;
  readyBytes: number;
  /** Every file in pg_wal (segments, recycled segments, history, partial). */
  pgWalBytes: number;
  /** Free to the server's (unprivileged) user, as PostgreSQL sees it when it writes. */
  fsFreeBytes: number;
  fsSizeBytes: number;
}

/** One look at pg_wal (the directory of the file archive_command was handed): one readdir, one stat per file, one statfs. */
export async function pgWalUsage(pgWalDir: string): Promise<PgWalUsage> {
  const [entries, ready, fs] = await Promise.all([
    readdir(pgWalDir, { withFileTypes: true }),
    readdir(path.join(pgWalDir, 'archive_status')).catch(() => [] as string[]),
    statfs(pgWalDir, { bigint: true }),
  ]);
  const sizes = new Map<string, number>();
  await Promise.all(
    entries
      .filter((e) => e.isFile())
      .map(async (e) => {
        // A recycled segment can be renamed or removed by a checkpoint between readdir and stat.
        const st = await stat(path.join(pgWalDir, e.name)).catch(() => undefined);
        if (st) sizes.set(e.name, st.size);
      }),
  );
  const waiting = ready.filter((f) => f.endsWith('.ready')).map((f) => f.slice(0, -'.ready'.length)).filter((f) => parseWalName(f) !== undefined);
  let pgWalBytes = 0;
  for (const size of sizes.values()) pgWalBytes += size;
  return {
    readyFiles: waiting.length,
    readyBytes: waiting.reduce((sum, f) => sum + (sizes.get(f) ?? 0), 0),
    pgWalBytes,
    fsFreeBytes: Number(fs.bavail * fs.bsize),
    fsSizeBytes: Number(fs.blocks * fs.bsize),
  };
}

import { majorOfVersion } from '../process/tools.js';

/**
 * The custom-format archive version each PostgreSQL major's pg_dump writes, which is also
 * the newest its pg_restore reads (K_VERS_MAX in src/bin/pg_dump/pg_backup_archiver.h):
 * 1.14 from 12 (table access methods), 1.15 from 16 (the compression algorithm in the
 * header), 1.16 from 17 (relkind in every entry); 18 writes 1.16 too. Checked against the
 * real pg_restore 15, 17 and 18 on real pg_dump 15, 17 and 18 archives
 * (test/integration/pg-archive-versions.test.ts).
 */
const ARCHIVE_VERSION_BY_MAJOR: ReadonlyMap<number, readonly [number, number]> = new Map([
  [12, [1, 14]],
  [13, [1, 14]],
  [14, [1, 14]],
  [15, [1, 14]],
  [16, [1, 15]],
  [17, [1, 16]],
  [18, [1, 16]],
]);

const compare = (a: readonly [number, number], b: readonly [number, number]) => a[0] - b[0] || a[1] - b[1];

/**
 * Whether pg_restore of `restoreMajor` reads an archive pg_dump of `dumpMajor` wrote: always
 * when it is as new (pg_restore reads every older version); otherwise by the versions above.
 * Undefined where the table does not know a major: pg_restore's own answer then stands.
 */
export function pgRestoreReads(restoreMajor: number, dumpMajor: number): boolean | undefined {
  if (dumpMajor <= restoreMajor) return true;
  const reads = ARCHIVE_VERSION_BY_MAJOR.get(restoreMajor);
  const written = ARCHIVE_VERSION_BY_MAJOR.get(dumpMajor);
  if (!reads || !written) return undefined;
  return compare(written, reads) <= 0;
}

/**
 * Where the pg_restore that runs cannot read the backup (the versions pg_restore and the
 * manifest's pg_dump report, as "15.20"): what the operator is to run instead, said whole.
 * Undefined where it can, or where either version is not known: pg_restore's own error stands.
 */
export function pgRestoreTooOld(restoreVersion: string | undefined, dumpVersion: string | undefined): string | undefined {
  const restoreMajor = majorOfVersion(restoreVersion);
  const dumpMajor = majorOfVersion(dumpVersion);
  if (restoreMajor === undefined || dumpMajor === undefined || pgRestoreReads(restoreMajor, dumpMajor) !== false) return undefined;
  const written = ARCHIVE_VERSION_BY_MAJOR.get(dumpMajor)!;
  const first = [...ARCHIVE_VERSION_BY_MAJOR].find(([, v]) => compare(v, written) >= 0)![0];
  return (
    `pg_restore ${restoreVersion} cannot read this backup: pg_dump ${dumpVersion} wrote it (archive version ${written.join('.')}), which pg_restore reads from PostgreSQL ${first} on. ` +
    `Run with pg_restore ${first} or newer: OPS_PG_RESTORE=<its path> (Debian: /usr/lib/postgresql/${first}/bin/pg_restore, package postgresql-client-${first})`
  );
}

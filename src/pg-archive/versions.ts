import { majorOfVersion } from '../process/tools.js';
import { ARCHIVE_VERSION_BY_MAJOR, versionAtLeast } from './format.js';

/**
 * Whether pg_restore of `restoreMajor` reads an archive pg_dump of `dumpMajor` wrote: always
 * when it is as new (pg_restore reads every older version); otherwise by the archive versions
 * each writes and reads (ARCHIVE_VERSION_BY_MAJOR). Undefined where that does not know a
 * major: pg_restore's own answer then stands.
 */
export function pgRestoreReads(restoreMajor: number, dumpMajor: number): boolean | undefined {
  if (dumpMajor <= restoreMajor) return true;
  const reads = ARCHIVE_VERSION_BY_MAJOR.get(restoreMajor);
  const written = ARCHIVE_VERSION_BY_MAJOR.get(dumpMajor);
  if (!reads || !written) return undefined;
  return versionAtLeast(reads, ...written);
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
  const first = [...ARCHIVE_VERSION_BY_MAJOR].find(([, v]) => versionAtLeast(v, ...written))![0];
  return (
    `pg_restore ${restoreVersion} cannot read this backup: pg_dump ${dumpVersion} wrote it (archive version ${written.join('.')}), which pg_restore reads from PostgreSQL ${first} on. ` +
    `Run with pg_restore ${first} or newer: OPS_PG_RESTORE=<its path> (Debian: /usr/lib/postgresql/${first}/bin/pg_restore, package postgresql-client-${first})`
  );
}

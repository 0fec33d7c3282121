import { readFileSync } from 'node:fs';
import path from 'node:path';
import { StageConfigError } from './errors.js';

/**
 * The PostgreSQL major of both pg_dump (the job image) and pg_restore (the verify
 * Lambda's layer). pg_restore reads only archive versions up to its own: the two must
 * move together. Bounded by Amazon Linux 2023, whose newest client package is 17.
 */
export const PG_MAJOR = 17;

/**
 * The PostgreSQL server majors the job image carries (postgresql-<major>, from the PGDG
 * repository) for point-in-time restores and drills: a base backup starts only under its
 * own major's server, and the restore picks the binaries by the base backup's server
 * version (src/process/tools.ts pgServerTool). A base backup of any other major is refused
 * before anything is extracted, naming the major to add here.
 */
export const PG_SERVER_MAJORS = [15, 16, 17] as const;

/** The `ARG PG_SERVER_MAJORS="…"` default of the job image's Dockerfile. */
export function dockerfileServerMajors(file: string): number[] | undefined {
  const m = /^ARG PG_SERVER_MAJORS="([\d ]+)"\s*$/m.exec(readFileSync(file, 'utf8'));
  return m ? m[1]!.trim().split(/\s+/).map(Number) : undefined;
}

/** The `ARG PG_MAJOR=` default of a Dockerfile, so a hand build agrees with the stack. */
export function dockerfilePgMajor(file: string): number | undefined {
  const m = /^ARG PG_MAJOR=(\d+)\s*$/m.exec(readFileSync(file, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

/** Synth stops when the image, the layer recipe and the constant disagree. */
export function assertPgMajors(repoRoot: string): void {
  const files = ['containers/backup/Dockerfile', 'lambdas/pg-restore-layer/Dockerfile'];
  const problems = files.flatMap((f) => {
    const v = dockerfilePgMajor(path.join(repoRoot, f));
    return v === PG_MAJOR ? [] : [{ path: f, message: `ARG PG_MAJOR=${v ?? '(missing)'} but cdk/versions.ts PG_MAJOR is ${PG_MAJOR}: pg_dump and pg_restore must be one major (pg_restore refuses newer archive versions)` }];
  });
  const servers = dockerfileServerMajors(path.join(repoRoot, 'containers/backup/Dockerfile'));
  if (servers?.join(' ') !== PG_SERVER_MAJORS.join(' ')) {
    problems.push({ path: 'containers/backup/Dockerfile', message: `ARG PG_SERVER_MAJORS="${servers?.join(' ') ?? '(missing)'}" but cdk/versions.ts PG_SERVER_MAJORS is ${PG_SERVER_MAJORS.join(' ')}` });
  }
  if (problems.length > 0) throw new StageConfigError('PostgreSQL client versions', problems);
}

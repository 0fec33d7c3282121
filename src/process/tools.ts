import { existsSync } from 'node:fs';

/**
 * Where external programs are found. In the Lambda the pg_restore layer puts them in
 * /opt/bin; elsewhere PATH, unless an OPS_* variable points at a specific binary.
 */
export function toolPath(tool: 'pg_dump' | 'pg_restore' | 'psql' | 'zstd' | 'redis-server' | 'pg_basebackup' | 'pg_ctl' | 'pg_verifybackup', env: NodeJS.ProcessEnv = process.env): string {
  const override = env[`OPS_${tool.toUpperCase().replace(/-/g, '_')}`];
  if (override) return override;
  const layer = `/opt/bin/${tool}`;
  if (existsSync(layer)) return layer;
  return tool;
}

/** `pg_dump (PostgreSQL) 15.20 (Debian …)` -> `15.20`. */
export function parsePgToolVersion(output: string): { version: string; major: number } {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(output);
  if (!m?.[1]) throw new Error(`cannot read a PostgreSQL version from "${output.trim()}"`);
  return { version: m[2] ? `${m[1]}.${m[2]}` : m[1], major: Number(m[1]) };
}

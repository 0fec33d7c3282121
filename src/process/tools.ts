import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ServerMajorMissingError } from './errors.js';

/**
 * Where external programs are found. In the Lambda the pg_restore layer puts them in
 * /opt/bin; elsewhere PATH, unless an OPS_* variable points at a specific binary.
 */
export function toolPath(tool: 'pg_dump' | 'pg_restore' | 'psql' | 'zstd' | 'redis-server' | 'pg_basebackup' | 'pg_ctl' | 'pg_verifybackup' | 'pg_receivewal', env: NodeJS.ProcessEnv = process.env): string {
  const override = env[`OPS_${tool.toUpperCase().replace(/-/g, '_')}`];
  if (override) return override;
  const layer = `/opt/bin/${tool}`;
  if (existsSync(layer)) return layer;
  return tool;
}

/** Whether `command` (a path, or a name looked up in PATH as exec looks it up) names an executable file. */
export function executableExists(command: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const candidates = command.includes('/') ? [command] : (env.PATH ?? '').split(':').filter(Boolean).map((dir) => path.join(dir, command));
  return candidates.some((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}

/** `pg_dump (PostgreSQL) 15.20 (Debian …)` -> `15.20`. */
export function parsePgToolVersion(output: string): { version: string; major: number } {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(output);
  if (!m?.[1]) throw new Error(`cannot read a PostgreSQL version from "${output.trim()}"`);
  return { version: m[2] ? `${m[1]}.${m[2]}` : m[1], major: Number(m[1]) };
}

/**
 * Where PostgreSQL's server binaries live: Debian's `/usr/lib/postgresql/<major>/bin`,
 * after any directories of the same layout named in OPS_PG_SERVER_DIRS (colon-separated).
 */
export function pgServerDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...(env.OPS_PG_SERVER_DIRS ?? '').split(':').filter(Boolean), '/usr/lib/postgresql'];
}

function installedServerTools(tool: string, env: NodeJS.ProcessEnv): { major: number; path: string }[] {
  const found: { major: number; path: string }[] = [];
  for (const dir of pgServerDirs(env)) {
    let majors: string[];
    try {
      majors = readdirSync(dir).filter((v) => /^\d+$/.test(v));
    } catch {
      continue;
    }
    for (const v of majors) {
      const p = path.join(dir, v, 'bin', tool);
      if (existsSync(p) && !found.some((f) => f.major === Number(v))) found.push({ major: Number(v), path: p });
    }
  }
  return found.sort((a, b) => a.major - b.major);
}

/**
 * A server tool for data of PostgreSQL `major`: pg_ctl (and the server it starts) of
 * exactly that major, since a data directory starts only under its own; pg_verifybackup of
 * that major or the nearest newer one (an older one refuses a newer backup_manifest).
 * Without a major, the newest installed. OPS_PG_CTL / OPS_PG_VERIFYBACKUP still win.
 */
export function pgServerTool(tool: 'pg_ctl' | 'pg_verifybackup', major: number | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const explicit = toolPath(tool, env);
  if (explicit !== tool) return explicit;
  const installed = installedServerTools(tool, env);
  if (major === undefined) return installed.at(-1)?.path ?? tool;
  const fit = tool === 'pg_ctl' ? installed.find((f) => f.major === major) : installed.find((f) => f.major >= major);
  if (fit) return fit.path;
  throw new ServerMajorMissingError(tool, major, installed.map((f) => f.major), pgServerDirs(env));
}

/** The major of a data directory (its PG_VERSION file), or undefined where there is none yet. */
export function dataDirMajor(pgdata: string): number | undefined {
  try {
    const v = Number(readFileSync(path.join(pgdata, 'PG_VERSION'), 'utf8').trim());
    return Number.isInteger(v) && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

/** `15.19`, `17.12 (Debian …)` -> 15, 17. */
export function majorOfVersion(version: string | undefined): number | undefined {
  const m = /^(\d+)/.exec(version ?? '');
  return m ? Number(m[1]) : undefined;
}

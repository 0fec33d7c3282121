import { OpsError } from '../errors.js';
import { maskUrl } from '../util/mask.js';

/** SQLSTATE (node-postgres `DatabaseError.code`) or a socket errno such as ECONNREFUSED. */
export function pgErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}

export class PostgresError extends OpsError {
  constructor(code: string, message: string, options: { context?: Record<string, unknown>; cause?: unknown; exitCode?: 2 | 64 } = {}) {
    super(code, message, options);
    this.name = 'PostgresError';
  }
}

const HINTS: Record<string, string> = {
  ECONNREFUSED: 'nothing listens there: check host and port, and that the server runs',
  ENOTFOUND: 'the host name does not resolve',
  ETIMEDOUT: 'no answer: check network path and security groups',
  '28P01': 'wrong password: check the secret or DATABASE_URL',
  '28000': 'authentication rejected (role or pg_hba.conf)',
  '3D000': "check the database name at the end of the URL, or create the database",
  '42501': 'permission denied: the role needs more rights',
};

export class PostgresConnectionError extends PostgresError {
  constructor(url: string, cause: unknown) {
    const code = pgErrorCode(cause) ?? 'UNKNOWN';
    const hint = HINTS[code];
    super('PG_CONNECT_FAILED', `cannot connect to ${maskUrl(url)}: ${(cause as Error)?.message ?? cause}${hint ? ` (${hint})` : ''}`, {
      context: { url: maskUrl(url), sqlstate: code },
      cause,
    });
    this.name = 'PostgresConnectionError';
  }
}

export class PgDumpTooOldError extends PostgresError {
  constructor(tool: string, toolMajor: number, serverMajor: number) {
    super(
      'PG_TOOL_TOO_OLD',
      `${tool} ${toolMajor} cannot dump a PostgreSQL ${serverMajor} server: install postgresql-client-${serverMajor} or newer (or point OPS_${tool.toUpperCase()} at it)`,
      { context: { tool, toolMajor, serverMajor } },
    );
    this.name = 'PgDumpTooOldError';
  }
}

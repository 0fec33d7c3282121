import { OpsError } from '../errors.js';

export class ToolNotFoundError extends OpsError {
  constructor(tool: string, cause?: unknown) {
    super('TOOL_NOT_FOUND', `${tool} was not found: install it or point the matching OPS_* variable at it`, {
      context: { tool },
      cause,
    });
    this.name = 'ToolNotFoundError';
  }
}

export class ToolFailedError extends OpsError {
  readonly exitStatus: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  /** Killed by a signal this process did not send (see wasInterrupted). */
  readonly fromOutside: boolean;

  constructor(tool: string, status: { code: number | null; signal: NodeJS.Signals | null }, stderr: string, fromOutside = false) {
    const how = status.signal ? `was killed by ${status.signal}` : `exited with ${status.code}`;
    // The tool's own error lines when it marks them (pg_restore and psql follow theirs with
    // the whole failing statement, which would push the cause out of a 3-line tail).
    const lines = stderr.trim().split('\n').filter(Boolean);
    const marked = lines.filter((l) => /\b(?:error|ERROR|FATAL|PANIC):/.test(l));
    const detail = (marked.length > 0 ? marked : lines).slice(-3).join(' | ');
    super('TOOL_FAILED', `${tool} ${how}${detail ? `: ${detail}` : ''}`, { context: { tool, ...status, stderr } });
    this.name = 'ToolFailedError';
    this.exitStatus = status.code;
    this.signal = status.signal;
    this.stderr = stderr;
    this.fromOutside = fromOutside && status.signal !== null;
  }
}

/** A server tool of the data's PostgreSQL major is not installed: another major cannot start or check it. */
export class ServerMajorMissingError extends OpsError {
  constructor(tool: string, major: number, installed: number[], searched: string[]) {
    super(
      'PG_MAJOR_MISSING',
      `${tool} of PostgreSQL ${major} is needed (the data is PostgreSQL ${major}) but ${installed.length ? `only ${installed.join(', ')} ${installed.length === 1 ? 'is' : 'are'}` : 'none is'} installed under ${searched.join(', ')}: install postgresql-${major} (the job image: its PG_SERVER_MAJORS), or point OPS_PG_SERVER_DIRS at a directory holding ${major}/bin`,
      { context: { tool, major, installed, searched } },
    );
    this.name = 'ServerMajorMissingError';
  }
}

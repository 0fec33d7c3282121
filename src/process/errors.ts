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

  constructor(tool: string, status: { code: number | null; signal: NodeJS.Signals | null }, stderr: string) {
    const how = status.signal ? `was killed by ${status.signal}` : `exited with ${status.code}`;
    const detail = stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
    super('TOOL_FAILED', `${tool} ${how}${detail ? `: ${detail}` : ''}`, { context: { tool, ...status, stderr } });
    this.name = 'ToolFailedError';
    this.exitStatus = status.code;
    this.signal = status.signal;
    this.stderr = stderr;
  }
}

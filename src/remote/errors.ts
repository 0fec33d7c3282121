import { OpsError } from '../errors.js';

/** A deployed stack could not be used: not found, an output missing, a call refused. */
export class RemoteError extends OpsError {
  constructor(code: string, message: string, options: { context?: Record<string, unknown>; cause?: unknown; exitCode?: 2 | 64 } = {}) {
    super(code, message, options);
    this.name = 'RemoteError';
  }
}

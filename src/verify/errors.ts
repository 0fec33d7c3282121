import { OpsError } from '../errors.js';

/** Base of every failure of a verification run itself (not a finding about the backup). */
export class VerifyError extends OpsError {
  constructor(code: string, message: string, options: { context?: Record<string, unknown>; cause?: unknown; exitCode?: 2 | 64 } = {}) {
    super(code, message, options);
    this.name = 'VerifyError';
  }
}

/**
 * Stopped by a signal (Ctrl-C, ECS's SIGTERM) while reading: the tools died of the signal,
 * not of the backup, so nothing is recorded. A "verify failed" record here would page
 * BackupVerifyFailed for a backup nobody found wrong.
 */
export class VerifyInterruptedError extends VerifyError {
  constructor(what: string, cause?: unknown) {
    super('VERIFY_INTERRUPTED', `interrupted while verifying ${what}; no verification was recorded (the backup's earlier verdict stands)`, { context: { what }, cause });
    this.name = 'VerifyInterruptedError';
  }
}

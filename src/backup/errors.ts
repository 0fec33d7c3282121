import { OpsError, errorMessage } from '../errors.js';

export class BackupError extends OpsError {
  constructor(code: string, message: string, options: { context?: Record<string, unknown>; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'BackupError';
  }
}

/** The payload could not be produced or stored; nothing was left that looks like a backup. */
export class BackupFailedError extends BackupError {
  constructor(component: string, name: string, cause: unknown) {
    super('BACKUP_FAILED', `${component} backup of ${name} failed: ${errorMessage(cause)}`, { context: { component, name }, cause });
    this.name = 'BackupFailedError';
  }
}

/** Stopped by a signal (SIGTERM from Fargate, Ctrl-C); the partial write was removed. */
export class BackupAbortedError extends BackupError {
  constructor(component: string, name: string, reason: string) {
    super('BACKUP_ABORTED', `${component} backup of ${name} aborted (${reason}); partial data removed, no manifest written`, {
      context: { component, name, reason },
    });
    this.name = 'BackupAbortedError';
  }
}

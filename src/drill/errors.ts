import { OpsError } from '../errors.js';

/** A drill could not be set up (its scratch server or directory), as opposed to a drill that ran and found differences. */
export class DrillSetupError extends OpsError {
  constructor(message: string, cause?: unknown) {
    super('DRILL_SETUP', message, { cause });
    this.name = 'DrillSetupError';
  }
}

/**
 * SIGTERM or Ctrl-C during a drill: its scratch server is stopped and its scratch data
 * removed, and no drill record is written (an interruption says nothing about the backup).
 */
export class DrillInterruptedError extends OpsError {
  constructor(what: string, cause?: unknown) {
    super('DRILL_INTERRUPTED', `drill of ${what} interrupted: its scratch server was stopped and its scratch data removed; no drill was recorded`, { cause });
    this.name = 'DrillInterruptedError';
  }
}

import { OpsError } from '../errors.js';

/** A drill could not be set up (its scratch server or directory), as opposed to a drill that ran and found differences. */
export class DrillSetupError extends OpsError {
  constructor(message: string, cause?: unknown) {
    super('DRILL_SETUP', message, { cause });
    this.name = 'DrillSetupError';
  }
}

import { OpsError } from '../errors.js';

/** A disaster-recovery request that names something the repository does not hold, or a target that is not usable. */
export class DrUsageError extends OpsError {
  constructor(message: string) {
    super('DR_USAGE', message, { exitCode: 64 });
    this.name = 'DrUsageError';
  }
}

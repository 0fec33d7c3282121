import { OpsError } from '../errors.js';

export class PartitionError extends OpsError {
  constructor(code: string, message: string, options: { context?: Record<string, unknown>; cause?: unknown; exitCode?: 2 | 64 } = {}) {
    super(code, message, options);
    this.name = 'PartitionError';
  }
}

export class ReadReplicaError extends PartitionError {
  constructor(database: string) {
    super('READ_REPLICA', `${database} is a read replica (pg_is_in_recovery): run partition maintenance against the primary`, { context: { database } });
    this.name = 'ReadReplicaError';
  }
}

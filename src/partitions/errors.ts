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

/** `--at` moved the clock and the plan would drop partitions: a preview, not a job. */
export class DropNeedsConfirmationError extends PartitionError {
  constructor(database: string, at: Date, partitions: string[]) {
    super(
      'DROP_NEEDS_CONFIRMATION',
      `${database}: a run --at ${at.toISOString()} would drop ${partitions.length} partition(s) (${partitions.join(', ')}); nothing was changed. ` +
        'Preview it with --dry-run, or repeat with --confirm-drop to drop them',
      { context: { database, at: at.toISOString(), partitions }, exitCode: 64 },
    );
    this.name = 'DropNeedsConfirmationError';
  }
}

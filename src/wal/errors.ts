import { OpsError } from '../errors.js';

export class WalError extends OpsError {
  constructor(code: string, message: string, options: { context?: Record<string, unknown>; cause?: unknown; exitCode?: 2 | 64 } = {}) {
    super(code, message, options);
    this.name = 'WalError';
  }
}

/** A name PostgreSQL never archives (segment, .history, .partial, .backup): refused, nothing written. */
export class WalNameError extends WalError {
  constructor(file: string) {
    super('WAL_BAD_NAME', `${file} is not a WAL file name (24 hex digits, optionally .partial or .XXXXXXXX.backup, or 8 hex digits .history)`, { exitCode: 64 });
    this.name = 'WalNameError';
  }
}

/** The archive already holds this name with other content: never overwritten. */
export class WalConflictError extends WalError {
  constructor(file: string, archived: string, local: string) {
    super('WAL_CONFLICT', `${file} is already archived with other content (sha256 ${archived.slice(0, 16)}…, this file ${local.slice(0, 16)}…): not overwritten. Two clusters may be archiving to the same name (check wal --name), or the file changed on disk`, {
      context: { file, archived, local },
    });
    this.name = 'WalConflictError';
  }
}

/** Recovery asks for names that do not exist: not an error worth noise, but not 0 either. */
export class WalNotArchivedError extends WalError {
  constructor(file: string) {
    super('WAL_NOT_ARCHIVED', `${file} is not in the archive`);
    this.name = 'WalNotArchivedError';
  }
}

/** The archived object is damaged: its bytes do not decode to what its header promises. */
export class WalCorruptError extends WalError {
  constructor(file: string, why: string) {
    super('WAL_CORRUPT', `archived ${file} is damaged (${why}): nothing was written to the destination`);
    this.name = 'WalCorruptError';
  }
}

/**
 * A WAL file or base backup of another cluster (another system identifier) than the one
 * this archive holds: pushed, it would mix two histories under one name; restored, it
 * would replay one cluster's WAL onto another's files. Refused, nothing written.
 */
export class WalClusterMismatchError extends WalError {
  constructor(name: string, archived: string, found: string, what: string, context: Record<string, unknown> = {}) {
    super(
      'WAL_OTHER_CLUSTER',
      `${what} is from cluster ${found}, but the archive of ${name} holds cluster ${archived} (its system identifier): nothing was written. Two clusters archive under --name ${name}: give this one its own name; if the old cluster is gone for good (initdb, pg_upgrade), move its archive aside first`,
      { context: { name, archived, found, ...context } },
    );
    this.name = 'WalClusterMismatchError';
  }
}

/** `wal receive` cannot start or go on: its slot, its server or its configuration; the message says which and what to do. */
export class WalReceiveError extends WalError {
  constructor(code: 'WAL_RECEIVE_SLOT' | 'WAL_RECEIVE_SERVER' | 'WAL_RECEIVE_OFF' | 'WAL_RECEIVE_UPLOAD', message: string, options: { context?: Record<string, unknown>; cause?: unknown; exitCode?: 2 | 64 } = {}) {
    super(code, message, options);
    this.name = 'WalReceiveError';
  }
}

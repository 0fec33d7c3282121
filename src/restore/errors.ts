import { OpsError } from '../errors.js';

export class RestoreError extends OpsError {
  constructor(code: string, message: string, options: { context?: Record<string, unknown>; cause?: unknown; exitCode?: 2 | 64 } = {}) {
    super(code, message, options);
    this.name = 'RestoreError';
  }
}

/** The target holds data and the caller did not repeat its name. */
export class RestoreRefusedError extends RestoreError {
  constructor(target: string, what: string) {
    // A refusal of the caller's input (64), not a failure: nothing was tried, nothing changed.
    super('RESTORE_REFUSED', `target ${target} is not empty (${what}): repeat its name with --confirm ${target} to restore over it`, {
      context: { target, what },
      exitCode: 64,
    });
    this.name = 'RestoreRefusedError';
  }
}

export class RestoreChecksumError extends RestoreError {
  constructor(expected: string, actual: string, bytes: number, expectedBytes: number) {
    super('RESTORE_CHECKSUM_MISMATCH', `payload does not match its manifest (sha256 ${actual.slice(0, 16)}… vs ${expected.slice(0, 16)}…, ${bytes} vs ${expectedBytes} bytes): restore stopped before the end`, {
      context: { expected, actual, bytes, expectedBytes },
    });
    this.name = 'RestoreChecksumError';
  }
}

/** The pg_restore that would run is older than the pg_dump that wrote the backup, and cannot read its archive. */
export class PgRestoreTooOldError extends RestoreError {
  constructor(message: string, context: { pgRestore: string; pgDump: string | undefined }) {
    // Nothing was tried: the target was not created or touched.
    super('PG_RESTORE_TOO_OLD', message, { context });
    this.name = 'PgRestoreTooOldError';
  }
}

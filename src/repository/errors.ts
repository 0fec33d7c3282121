import { OpsError } from '../errors.js';

export class RepositoryError extends OpsError {
  constructor(code: string, message: string, options: { context?: Record<string, unknown>; cause?: unknown; exitCode?: 2 | 64 } = {}) {
    super(code, message, options);
    this.name = 'RepositoryError';
  }
}

export class RepositoryUrlError extends RepositoryError {
  constructor(url: string, reason: string) {
    super('REPOSITORY_URL_INVALID', `repository URL "${url}": ${reason}`, { context: { url }, exitCode: 64 });
    this.name = 'RepositoryUrlError';
  }
}

export class ObjectNotFoundError extends RepositoryError {
  constructor(key: string, cause?: unknown) {
    super('OBJECT_NOT_FOUND', `not found in the repository: ${key}`, { context: { key }, cause });
    this.name = 'ObjectNotFoundError';
  }
}

export class RepositoryWriteError extends RepositoryError {
  constructor(key: string, cause: unknown) {
    super('REPOSITORY_WRITE_FAILED', `writing ${key} to the repository failed: ${(cause as Error)?.message ?? cause}`, {
      context: { key },
      cause,
    });
    this.name = 'RepositoryWriteError';
  }
}

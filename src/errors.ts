/**
 * Base of every error the domain raises. Subclasses set `name` and `code`, carry
 * structured context, and keep the original `cause`, so callers branch on `code`
 * (and SQLSTATE inside `cause`), never on message text.
 */
export class OpsError extends Error {
  readonly code: string;
  readonly context: Readonly<Record<string, unknown>>;
  /** Exit code the CLI uses for this failure: 64 bad usage/config, 2 failed. */
  readonly exitCode: 2 | 64;

  constructor(
    code: string,
    message: string,
    options: { context?: Record<string, unknown>; cause?: unknown; exitCode?: 2 | 64 } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OpsError';
    this.code = code;
    this.context = options.context ?? {};
    this.exitCode = options.exitCode ?? 2;
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

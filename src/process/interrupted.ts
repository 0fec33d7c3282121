import { ToolFailedError } from './errors.js';

/** Signals that stop a process from outside: a terminal's Ctrl-C, a stop request, a closed session. */
const STOP_SIGNALS = new Set<NodeJS.Signals>(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']);

/**
 * Whether a run was stopped rather than failed: its abort signal fired, or one of its tools
 * was killed by a stop signal this process never sent. Ctrl-C reaches the whole process
 * group at once, and a child's exit can be seen before this process's own handler has run
 * (CI saw `pg_restore --list was killed by SIGINT` recorded as a failed verification).
 */
export function wasInterrupted(signal: AbortSignal | undefined, ...errors: unknown[]): boolean {
  if (signal?.aborted) return true;
  return errors.some((e) => stoppedFromOutside(e, 0));
}

function stoppedFromOutside(error: unknown, depth: number): boolean {
  if (depth > 8 || error === null || typeof error !== 'object') return false;
  if (error instanceof ToolFailedError && error.fromOutside && error.signal && STOP_SIGNALS.has(error.signal)) return true;
  if (error instanceof AggregateError && error.errors.some((e) => stoppedFromOutside(e, depth + 1))) return true;
  return stoppedFromOutside((error as { cause?: unknown }).cause, depth + 1);
}

/** The reason of a rejected outcome, for wasInterrupted. */
export function rejection(outcome: PromiseSettledResult<unknown> | undefined): unknown {
  return outcome?.status === 'rejected' ? outcome.reason : undefined;
}

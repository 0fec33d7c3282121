/**
 * `fn` over `items`, at most `limit` at a time, in order of start. `fn` returning `false`
 * stops the items not started yet (e.g. the end of an archive was reached).
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<boolean | void>): Promise<void> {
  let next = 0;
  let stopped = false;
  const worker = async () => {
    while (!stopped && next < items.length) {
      const item = items[next++]!;
      if ((await fn(item)) === false) stopped = true;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * `work`, or a rejection as soon as `signal` aborts (the work itself may go on briefly:
 * the caller's cleanup ends what it started, a scratch server or directory).
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error(`interrupted (${String(signal.reason)})`));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error(`interrupted (${String(signal.reason)})`));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => (signal.removeEventListener('abort', onAbort), resolve(value)),
      (error: unknown) => (signal.removeEventListener('abort', onAbort), reject(error)),
    );
  });
}

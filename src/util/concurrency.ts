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

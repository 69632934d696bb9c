/**
 * Runs `run` for every item, at most `limit` at a time. Every item is tried even when some fail;
 * the returned promise settles only after all of them have (then rejecting with the first
 * failure). A caller that retries after a failure therefore never overlaps work still running
 * from the failed attempt.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      try {
        await run(items[next++] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/**
 * The one polling helper, for state that has no event to await (a gauge, a
 * readiness reason, a Redis key): polls `check` until it gives a value other
 * than undefined or false, which it returns. Inside a test body expect.poll
 * does the same; this one also serves hooks (beforeAll), where expect.poll
 * cannot run, and waits that need the value.
 */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  what = 'condition',
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

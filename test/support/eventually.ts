import { expect } from 'vitest';

/**
 * The one polling helper, for state that has no event to await (a gauge, a
 * readiness reason, a Redis key): vitest's expect.poll until `check` gives a
 * value other than undefined or false, which it returns.
 */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  let value: T | undefined | false;
  await expect
    .poll(
      async () => {
        value = await check();
        return value !== undefined && value !== false;
      },
      { timeout: timeoutMs, interval: 20, message: `${what} not reached within ${timeoutMs} ms` },
    )
    .toBe(true);
  return value as T;
}

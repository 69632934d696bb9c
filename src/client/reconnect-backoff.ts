import { backoffDelayMs } from '../time/backoff.js';

/** The delays between reconnect attempts to the home relay. */
export interface ReconnectBackoffOptions {
  /** Delay before the one quick retry right after a drop. */
  quickRetryMs: number;
  /** First delay of the exponential phase. */
  initialMs: number;
  maxMs: number;
  multiplier: number;
  /** ±fraction applied to every exponential delay, spreading a herd of clients. */
  jitter: number;
  /** Uniform in [0, 1); injectable so tests can pin the jitter. */
  random: () => number;
}

/** NetBird's values: retry after 1.5 s, then 2 s doubling to 60 s, ±50 %. */
export const DEFAULT_RECONNECT_BACKOFF: ReconnectBackoffOptions = {
  quickRetryMs: 1_500,
  initialMs: 2_000,
  maxMs: 60_000,
  multiplier: 2,
  jitter: 0.5,
  random: Math.random,
};

/**
 * Delay before attempt `attempt` (0-based) after a drop: attempt 0 is the
 * quick retry; attempt n ≥ 1 waits min(initial · multiplier^(n-1), max),
 * randomised by ±jitter.
 */
export function reconnectDelayMs(
  attempt: number,
  options: ReconnectBackoffOptions = DEFAULT_RECONNECT_BACKOFF,
): number {
  if (attempt <= 0) return options.quickRetryMs;
  const { initialMs, maxMs, multiplier, jitter, random } = options;
  const policy = { initialMs, maxMs, multiplier, spread: [1 - jitter, 1 + jitter] as const };
  return Math.round(backoffDelayMs(attempt - 1, policy, random));
}

/** Exponential backoff: delays grow by `multiplier` from `initialMs` up to `maxMs`. */
export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  /**
   * Each delay is the step times a factor drawn uniformly from [low, high):
   * [0.5, 1] never waits longer than the step, [0.5, 1.5] spreads around it.
   * The spread keeps many clients or pods from retrying in step.
   */
  readonly spread: readonly [low: number, high: number];
}

/** Delay before retry `attempt` (0-based): min(initial · multiplier^attempt, max), spread. */
export function backoffDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  // The exponent is capped so that a long outage cannot overflow to Infinity × 0.
  const step = Math.min(
    policy.initialMs * policy.multiplier ** Math.min(Math.max(attempt, 0), 64),
    policy.maxMs,
  );
  const [low, high] = policy.spread;
  return step * (low + (high - low) * random());
}

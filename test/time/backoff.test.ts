import { describe, expect, it } from 'vitest';
import { backoffDelayMs, type BackoffPolicy } from '../../src/time/backoff.js';

const policy: BackoffPolicy = { initialMs: 100, maxMs: 5_000, multiplier: 2, spread: [0.5, 1] };

describe('backoffDelayMs', () => {
  it('doubles from the initial delay up to the maximum', () => {
    const highest = [0, 1, 2, 3, 4, 5, 6, 100].map((n) => backoffDelayMs(n, policy, () => 1));
    expect(highest).toEqual([100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000]);
  });

  it('draws each delay from the spread around the step', () => {
    expect(backoffDelayMs(3, policy, () => 0)).toBe(400);
    expect(backoffDelayMs(3, policy, () => 0.5)).toBe(600);
    const around = { ...policy, spread: [0.5, 1.5] as const };
    expect(backoffDelayMs(3, around, () => 0)).toBe(400);
    expect(backoffDelayMs(3, around, () => 0.75)).toBe(1_000);
  });

  it('stays finite after any number of failures', () => {
    expect(backoffDelayMs(1e9, policy, () => 1)).toBe(5_000);
    expect(backoffDelayMs(-3, policy, () => 1)).toBe(100);
  });
});

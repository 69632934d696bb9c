import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RECONNECT_BACKOFF, reconnectDelayMs } from '../../src/client/reconnect-backoff.js';

describe('reconnect backoff', () => {
  it('retries quickly once, after 1.5 s, without jitter', () => {
    expect(reconnectDelayMs(0, { ...DEFAULT_RECONNECT_BACKOFF, random: () => 0.99 })).toBe(1_500);
  });

  it('then waits 2 s doubling to 60 s, always within ±50 %', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const base = Math.min(2_000 * 2 ** (attempt - 1), 60_000);
          const delay = reconnectDelayMs(attempt, { ...DEFAULT_RECONNECT_BACKOFF, random: () => r });
          expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.5));
          expect(delay).toBeLessThanOrEqual(Math.ceil(base * 1.5));
        },
      ),
    );
  });

  it('hits both ends of the jitter range and the cap', () => {
    const low = { ...DEFAULT_RECONNECT_BACKOFF, random: () => 0 };
    const high = { ...DEFAULT_RECONNECT_BACKOFF, random: () => 1 - Number.EPSILON };
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => reconnectDelayMs(n, low))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
    ]);
    expect([1, 2, 6, 9].map((n) => reconnectDelayMs(n, high))).toEqual([3_000, 6_000, 90_000, 90_000]);
  });
});

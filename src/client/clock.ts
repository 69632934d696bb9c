/** An opaque handle returned by Clock.setTimeout. */
export type TimerHandle = unknown;

/**
 * The time source the client library schedules with. Tests may inject their
 * own; the default looks the globals up at call time, so vitest fake timers
 * apply to it as well.
 */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

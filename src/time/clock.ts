/** A timer of a Clock; opaque to its users. */
export type TimerHandle = { readonly __timer: never };

/**
 * Where timed classes read the time and start timers. Production uses the
 * system clock; tests inject a manual one and step time instead of sleeping.
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch (what is written to Redis or the API). */
  now(): number;
  /** Milliseconds on a monotonic clock, for measuring intervals. */
  monotonicMs(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(callback: () => void, intervalMs: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
}

/** The process's clock. Globals are looked up at call time, so vitest's fake timers apply too. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs) as unknown as TimerHandle,
  clearTimeout: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout | undefined),
  setInterval: (callback, intervalMs) => setInterval(callback, intervalMs) as unknown as TimerHandle,
  clearInterval: (handle) => clearInterval(handle as unknown as NodeJS.Timeout | undefined),
};

/** The same clock for housekeeping (heartbeats, redials, keepalives): its timers never keep the process alive. */
export const backgroundClock: Clock = {
  ...systemClock,
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs).unref() as unknown as TimerHandle,
  setInterval: (callback, intervalMs) => setInterval(callback, intervalMs).unref() as unknown as TimerHandle,
};

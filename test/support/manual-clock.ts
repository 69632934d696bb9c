import type { Clock, TimerHandle } from '../../src/time/clock.js';

interface ManualTimer {
  dueAt: number;
  callback: () => void;
  /** Set for an interval: it is due again this long after each run. */
  everyMs?: number;
}

/**
 * A clock that moves only when the test advances it: due timers run in the
 * order they fall due, each seeing `now()` at its own due time, so a test
 * proves "not yet" and "now" exactly instead of sleeping.
 */
export class ManualClock implements Clock {
  #nowMs: number;
  #timers = new Set<ManualTimer>();

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  monotonicMs(): number {
    return this.#nowMs;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    return this.#add({ dueAt: this.#nowMs + Math.max(0, delayMs), callback });
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.#timers.delete(handle as unknown as ManualTimer);
  }

  setInterval(callback: () => void, intervalMs: number): TimerHandle {
    const everyMs = Math.max(1, intervalMs);
    return this.#add({ dueAt: this.#nowMs + everyMs, callback, everyMs });
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }

  /** Timers started and not yet run or cleared. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time on by `ms`, running every timer that falls due on the way (also ones started meanwhile). */
  advance(ms: number): void {
    const until = this.#nowMs + ms;
    for (;;) {
      const next = this.#earliestDue(until);
      if (next === undefined) break;
      this.#nowMs = next.dueAt;
      if (next.everyMs === undefined) this.#timers.delete(next);
      else next.dueAt += next.everyMs;
      next.callback();
    }
    this.#nowMs = until;
  }

  #add(timer: ManualTimer): TimerHandle {
    this.#timers.add(timer);
    return timer as unknown as TimerHandle;
  }

  #earliestDue(until: number): ManualTimer | undefined {
    let earliest: ManualTimer | undefined;
    for (const timer of this.#timers) {
      if (timer.dueAt <= until && (earliest === undefined || timer.dueAt < earliest.dueAt)) earliest = timer;
    }
    return earliest;
  }
}

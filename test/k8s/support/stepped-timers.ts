import { expect } from 'vitest';
import type { Clock, TimerHandle } from '../../../src/time/clock.js';

interface SteppedTimer {
  callback: () => void;
  delayMs: number;
}

/**
 * A clock whose timers the test fires by hand: each round runs when the test
 * says, with the delay it was given; the time moves by that delay.
 */
export class SteppedTimers implements Clock {
  readonly pending: SteppedTimer[] = [];
  #nowMs = 0;
  now(): number {
    return this.#nowMs;
  }
  monotonicMs(): number {
    return this.#nowMs;
  }
  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const timer = { callback, delayMs };
    this.pending.push(timer);
    return timer as unknown as TimerHandle;
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    const index = this.pending.indexOf(handle as unknown as SteppedTimer);
    if (index >= 0) this.pending.splice(index, 1);
  }
  setInterval(): TimerHandle {
    throw new Error('SteppedTimers steps one-shot timers only');
  }
  clearInterval(): void {}
  /** Runs the one pending round and waits until it scheduled the next; returns that one's delay. */
  async step(): Promise<number> {
    expect(this.pending).toHaveLength(1);
    const timer = this.pending.shift()!;
    this.#nowMs += timer.delayMs;
    timer.callback();
    await expect.poll(() => this.pending.length).toBe(1);
    return this.pending[0]!.delayMs;
  }
}

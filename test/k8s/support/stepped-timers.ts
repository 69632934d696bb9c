import { expect } from 'vitest';
import type { RebalancerTimers } from '../../../src/k8s/rebalancer.js';

/** Timers the test fires by hand: each round runs when the test says, with the delay it was given. */
export class SteppedTimers implements RebalancerTimers {
  readonly pending: { callback: () => void; delayMs: number }[] = [];
  setTimeout(callback: () => void, delayMs: number): unknown {
    const timer = { callback, delayMs };
    this.pending.push(timer);
    return timer;
  }
  clearTimeout(handle: unknown): void {
    const index = this.pending.indexOf(handle as (typeof this.pending)[number]);
    if (index >= 0) this.pending.splice(index, 1);
  }
  /** Runs the one pending round and waits until it scheduled the next; returns that one's delay. */
  async step(): Promise<number> {
    expect(this.pending).toHaveLength(1);
    this.pending.shift()!.callback();
    await expect.poll(() => this.pending.length).toBe(1);
    return this.pending[0]!.delayMs;
  }
}

import { describe, expect, it } from 'vitest';
import type { Clock, TimerHandle } from '../../src/time/clock.js';
import { beforeDeadline, settledWithin } from '../../src/time/deadline.js';

/** A clock whose one timer fires when the test says; it records what was started and cleared. */
class HandClock implements Clock {
  started: { callback: () => void; ms: number }[] = [];
  cleared = 0;
  now = (): number => 0;
  monotonicMs = (): number => 0;
  setTimeout(callback: () => void, ms: number): TimerHandle {
    this.started.push({ callback, ms });
    return this.started.length as unknown as TimerHandle;
  }
  clearTimeout(): void {
    this.cleared++;
  }
  setInterval(): TimerHandle {
    throw new Error('not used');
  }
  clearInterval(): void {}
  fire(): void {
    this.started[0]!.callback();
  }
}

describe('beforeDeadline', () => {
  it("gives the work's outcome when it comes first, and clears its timer", async () => {
    const clock = new HandClock();
    await expect(beforeDeadline(Promise.resolve('done'), 50, () => 'late', clock)).resolves.toBe('done');
    await expect(beforeDeadline(Promise.reject(new Error('no')), 50, () => 'late', clock)).rejects.toThrow(
      'no',
    );
    expect(clock.started.map((t) => t.ms)).toEqual([50, 50]);
    expect(clock.cleared).toBe(2);
  });

  it('gives the deadline value, or its error, when the deadline comes first', async () => {
    const never = new Promise<string>(() => {});
    const clock = new HandClock();
    const late = beforeDeadline(never, 10, () => 'late', clock);
    clock.fire();
    await expect(late).resolves.toBe('late');
    const failing = new HandClock();
    const failed = beforeDeadline(
      never,
      10,
      () => {
        throw new Error('timed out');
      },
      failing,
    );
    failing.fire();
    await expect(failed).rejects.toThrow('timed out');
  });

  it('settledWithin is true for a rejection in time and false at the deadline', async () => {
    const clock = new HandClock();
    await expect(settledWithin(Promise.reject(new Error('x')), 10, clock)).resolves.toBe(true);
    const pending = settledWithin(new Promise(() => {}), 10, clock);
    clock.started[1]!.callback();
    await expect(pending).resolves.toBe(false);
  });
});

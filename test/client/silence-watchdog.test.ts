import { describe, expect, it } from 'vitest';
import { SilenceWatchdog } from '../../src/client/silence-watchdog.js';
import { ManualClock } from '../support/manual-clock.js';

function watchdog(timeoutMs: number): { dog: SilenceWatchdog; clock: ManualClock; silences: number[] } {
  const clock = new ManualClock();
  const silences: number[] = [];
  const dog = new SilenceWatchdog(timeoutMs, () => silences.push(clock.now()), clock);
  return { dog, clock, silences };
}

describe('SilenceWatchdog', () => {
  it('fires once, exactly when nothing was fed for the timeout', () => {
    const { dog, clock, silences } = watchdog(35_000);
    dog.feed();
    clock.advance(34_999);
    expect(silences).toEqual([]);
    clock.advance(1);
    expect(silences).toEqual([35_000]);
    clock.advance(100_000);
    expect(silences).toEqual([35_000]);
  });

  it('counts the timeout from the last feed, with one timer however often it is fed', () => {
    const { dog, clock, silences } = watchdog(35_000);
    dog.feed();
    for (let i = 0; i < 100; i++) {
      clock.advance(1_000);
      dog.feed();
    }
    expect(clock.pendingTimers).toBe(1);
    // Last fed at 100 s: silent from then on, it fires at 135 s and not before.
    clock.advance(34_999);
    expect(silences).toEqual([]);
    clock.advance(1);
    expect(silences).toEqual([135_000]);
  });

  it('never fires after stop, and a feed after stop starts it again', () => {
    const { dog, clock, silences } = watchdog(10_000);
    dog.feed();
    dog.stop();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(60_000);
    expect(silences).toEqual([]);
    dog.feed();
    clock.advance(10_000);
    expect(silences).toEqual([70_000]);
  });
});

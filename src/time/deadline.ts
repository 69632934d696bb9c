import { systemClock, type Clock, type TimerHandle } from './clock.js';

/**
 * `work`'s outcome, or `atDeadline()`'s if `ms` passes first (throwing there
 * rejects). The timer never outlives the race. Client 1.x API requests and
 * some Redis waits have no timeout of their own: every wait that must end does it this way.
 */
export async function beforeDeadline<T>(
  work: Promise<T>,
  ms: number,
  atDeadline: () => T,
  clock: Clock = systemClock,
): Promise<T> {
  let timer: TimerHandle | undefined;
  const deadline = new Promise<T>((resolve, reject) => {
    timer = clock.setTimeout(() => {
      try {
        resolve(atDeadline());
      } catch (err) {
        reject(err as Error);
      }
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clock.clearTimeout(timer);
  }
}

/** True if `work` settled (fulfilled or rejected) within `ms`, false if the deadline came first. */
export function settledWithin(
  work: Promise<unknown>,
  ms: number,
  clock: Clock = systemClock,
): Promise<boolean> {
  const settled = work.then(
    () => true,
    () => true,
  );
  return beforeDeadline(settled, ms, () => false, clock);
}

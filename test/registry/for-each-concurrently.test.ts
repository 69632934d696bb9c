import { describe, expect, it } from 'vitest';
import { forEachConcurrently } from '../../src/registry/for-each-concurrently.js';

describe('forEachConcurrently', () => {
  it('runs at most `limit` items at a time, each once', async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    await forEachConcurrently([1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      running++;
      most = Math.max(most, running);
      await Promise.resolve();
      seen.push(item);
      running--;
    });
    expect(most).toBe(3);
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('after a failure still runs the rest, and rejects only once the work already started has ended', async () => {
    const log: string[] = [];
    let finishSlow!: () => void;
    const slow = new Promise<void>((resolve) => (finishSlow = resolve));
    let settled = false;
    const all = forEachConcurrently(['slow', 'bad', 'later'], 2, async (item) => {
      if (item === 'slow') await slow;
      if (item === 'bad') throw new Error('bad failed');
      log.push(item);
    });
    all.then(
      () => (settled = true),
      () => (settled = true),
    );
    // The worker that failed took the next item and finished it...
    await expect.poll(() => log).toEqual(['later']);
    // ...while the slow item is still running: a retry now would overlap it.
    expect(settled).toBe(false);
    finishSlow();
    await expect(all).rejects.toThrow('bad failed');
    expect(log).toEqual(['later', 'slow']);
  });
});

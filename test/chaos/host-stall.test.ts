import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HistoryWriter } from './history.js';
import { watchHostStalls } from './host-stall.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('host stall monitor', () => {
  it('records a blocked event loop as a host-stall fault spanning the gap', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'host-stall-'));
    dirs.push(dir);
    const file = join(dir, 'history.jsonl');
    const history = new HistoryWriter(file);
    const monitor = watchHostStalls(history, 200);
    // Let it tick normally first, then hold the loop for 600 ms (the stall it must see).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const blockedAt = history.now();
    while (history.now() - blockedAt < 600) {
      // busy: this is the stall under test
    }
    const events = (): { t: number; kind: string; phase: string; ms: number }[] =>
      readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { t: number; kind: string; phase: string; ms: number });
    // The machine may stall the test on its own too: pick the recorded window around the block.
    const around = (): number => events().findIndex((e) => e.phase === 'end' && e.t >= blockedAt + 600);
    await expect.poll(around, { timeout: 5_000 }).toBeGreaterThan(0);
    monitor.stop();
    await history.close();
    const all = events();
    const end = all[around()];
    const start = all[around() - 1];
    expect(start).toMatchObject({ kind: 'host-stall', phase: 'start' });
    expect(end).toMatchObject({ kind: 'host-stall', phase: 'end' });
    // The window covers the blocked stretch and the recorded length is its own.
    expect(start!.t).toBeLessThanOrEqual(blockedAt);
    expect(end!.t).toBeGreaterThanOrEqual(blockedAt + 600);
    expect(start!.ms).toBe(Math.round(end!.t - start!.t));
  });
});

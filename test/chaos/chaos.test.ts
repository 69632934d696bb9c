import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkFile } from './checker.js';
import { runChaos, type Topology } from './driver.js';

/*
 * A short, fixed-seed chaos run per Redis topology: faults from the seed's
 * schedule, 30 clients, then the independent checker over the history. Longer
 * runs and other seeds: npm run chaos (README, "Chaos testing").
 */
const dir = mkdtempSync(join(tmpdir(), 'nb-chaos-test-'));
let failed = false;
// A failing run's history stays for reading (its path is in the failure message).
afterAll(() => {
  if (!failed) rmSync(dir, { recursive: true, force: true });
});

/** The redis run also fuzzes pod chaos-1: 5,000 frames fit in its 20 s of faults (8,000 added 17 s at load ~9). */
const CI_FUZZ_FRAMES = 5_000;
const RUNS: { topology: Topology; seed: number; fuzzFrames?: number }[] = [
  { topology: 'redis', seed: 101, fuzzFrames: CI_FUZZ_FRAMES },
  { topology: 'sentinel', seed: 202 },
  { topology: 'cluster', seed: 303 },
];

describe('chaos run judged by the checker', () => {
  for (const { topology, seed, fuzzFrames } of RUNS) {
    const fuzzing = fuzzFrames ? `, ${fuzzFrames} fuzzed frames` : '';
    it(`${topology}: seed ${seed}, 20 s of faults${fuzzing}, no invariant violated`, async () => {
      const result = await runChaos({
        seed,
        topology,
        durationMs: 20_000,
        clients: 30,
        dir,
        boundMs: 15_000,
        rssBoundBytes: 256 * 1024 * 1024,
        fuzzFrames,
      });
      const { verdict, report } = checkFile(result.historyFile);
      failed ||= verdict.violations.length > 0;
      expect(verdict.stats.sent).toBeGreaterThan(1_000);
      expect(Object.keys(verdict.stats.faults).length).toBeGreaterThan(0);
      expect(verdict.violations.length, `seed ${seed} ${topology}, ${result.historyFile}\n${report}`).toBe(0);
      if (fuzzFrames) {
        // Every phase was reached, and the relay both kept and closed fuzzed connections.
        const fuzz = result.fuzz;
        expect(fuzz?.frames).toBeGreaterThanOrEqual(fuzzFrames);
        for (const phase of ['pre-auth', 'post-auth', 'mesh'] as const) {
          const outcomes = Object.keys(fuzz?.outcomes ?? {}).filter((key) => key.startsWith(`${phase}/`));
          expect(outcomes.some((key) => key.includes('/closed-'))).toBe(true);
          expect(outcomes.some((key) => !key.includes('/closed-'))).toBe(true);
        }
      }
    }, 180_000);
  }
});

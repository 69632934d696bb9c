import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let compiled: { dir: string; library: string } | undefined;
process.once('exit', () => {
  if (compiled) rmSync(compiled.dir, { recursive: true, force: true });
});

/**
 * Environment that starts a process with its wall clock `seconds` away from the host's
 * (clock-shift.c, compiled with gcc on first use). A test double for a clock step: one machine
 * has one clock.
 */
export function shiftedClockEnv(seconds: number): NodeJS.ProcessEnv {
  if (compiled === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'nb-clock-shift-'));
    const library = join(dir, 'clock-shift.so');
    const source = new URL('./clock-shift.c', import.meta.url).pathname;
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', library, source, '-ldl'], { timeout: 30_000 });
    compiled = { dir, library };
  }
  return { LD_PRELOAD: compiled.library, CLOCK_SHIFT_SECONDS: String(Math.round(seconds)) };
}

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Environment that starts a process with its wall clock `seconds` away from the host's
 * (clock-shift.c, compiled with gcc into `dir`, which the caller removes). A test double for a
 * clock step: one machine has one clock.
 */
export function shiftedClockEnv(seconds: number, dir: string): NodeJS.ProcessEnv {
  const library = join(dir, 'clock-shift.so');
  if (!existsSync(library)) {
    const source = new URL('./clock-shift.c', import.meta.url).pathname;
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', library, source, '-ldl'], { timeout: 30_000 });
  }
  return { LD_PRELOAD: library, CLOCK_SHIFT_SECONDS: String(Math.round(seconds)) };
}

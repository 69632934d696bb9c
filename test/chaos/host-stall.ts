import type { HistoryWriter } from './history.js';

/*
 * Host stalls: the chaos clients live in the driver process, so when the machine starves
 * that process (2 cores shared with other work), their sends, receives and the relay's
 * heartbeats all slip by the stall. Such a gap is recorded as a fault of its own kind,
 * `host-stall`, with the exact window in which the driver did not run: the checker then
 * judges it like any other fault, and the report counts it in its own row. Nothing is
 * excused silently: a run without stalls is judged exactly as before.
 */

/** How often the driver checks that it still runs. */
const TICK_MS = 50;

export interface HostStallMonitor {
  stop(): void;
}

/** Writes `fault {kind: 'host-stall'}` start/end pairs for every gap between ticks longer than `stallMs`. */
export function watchHostStalls(history: HistoryWriter, stallMs: number): HostStallMonitor {
  let last = history.now();
  let id = 0;
  const timer = setInterval(() => {
    const now = history.now();
    // A tick is due every TICK_MS; whatever came on top of that, the driver was not running.
    if (now - last - TICK_MS > stallMs) {
      const fault = { id: `stall-${++id}`, kind: 'host-stall', pod: 'driver', ms: Math.round(now - last) };
      history.writeAt(last, 'fault', { ...fault, phase: 'start' });
      history.writeAt(now, 'fault', { ...fault, phase: 'end' });
    }
    last = now;
  }, TICK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** How many lines of one kind pass per window before the rest are only counted. */
export interface LogRateLimit {
  readonly linesPerWindow: number;
  readonly windowMs: number;
}

export const DEFAULT_LOG_RATE_LIMIT: LogRateLimit = { linesPerWindow: 10, windowMs: 10_000 };

/** Kinds remembered at once; a flood of distinct messages forgets the oldest. */
const MAX_KINDS = 1024;

interface Window {
  startedAt: number;
  passed: number;
  suppressed: number;
  summary?: NodeJS.Timeout;
}

/**
 * Counts lines per kind (the message text) per window. A suppressed run is
 * reported once, when its window ends, with how many lines it swallowed.
 */
export class LogRateLimiter {
  readonly #limit: LogRateLimit;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();

  constructor(limit: LogRateLimit, now: () => number = Date.now) {
    this.#limit = limit;
    this.#now = now;
  }

  /** True: write the line. False: it was counted; `report(suppressed)` runs when the window ends. */
  admit(kind: string, report: (suppressed: number) => void): boolean {
    const now = this.#now();
    let window = this.#windows.get(kind);
    if (window === undefined || now - window.startedAt >= this.#limit.windowMs) {
      if (window?.summary === undefined) {
        if (this.#windows.size >= MAX_KINDS && window === undefined) this.#forgetOldest();
        window = { startedAt: now, passed: 0, suppressed: 0 };
        this.#windows.set(kind, window);
      }
    }
    if (window.passed < this.#limit.linesPerWindow) {
      window.passed++;
      return true;
    }
    window.suppressed++;
    if (window.summary === undefined) {
      const current = window;
      current.summary = setTimeout(
        () => {
          this.#windows.delete(kind);
          report(current.suppressed);
        },
        Math.max(0, current.startedAt + this.#limit.windowMs - now),
      );
      current.summary.unref();
    }
    return false;
  }

  #forgetOldest(): void {
    for (const [kind, window] of this.#windows) {
      if (window.summary !== undefined) continue;
      this.#windows.delete(kind);
      return;
    }
  }
}

import type { Logger } from 'pino';

/**
 * Warns about refused mesh connections at most once per interval per reason,
 * with the number suppressed since: a scanner or a misconfigured pod that
 * dials in a loop must not flood the log (the metric still counts each one).
 */
export class MeshRefusalLog {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(logger: Logger, intervalMs = 10_000) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  refused(reason: string, fields: Record<string, unknown>, now = Date.now()): void {
    // Reasons are a small fixed set, so this map stays bounded.
    const entry = this.#last.get(reason);
    if (entry && now - entry.at < this.#intervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#last.set(reason, { at: now, suppressed: 0 });
    this.#logger.warn({ reason, ...fields, suppressed_since_last: suppressed }, 'refused mesh connection');
  }
}

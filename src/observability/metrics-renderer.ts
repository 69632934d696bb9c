import type { Registry } from 'prom-client';

/**
 * Renders the registry at most once per interval: concurrent and back-to-back
 * scrapes share one rendering, so a scrape flood costs one render per interval.
 */
export class MetricsRenderer {
  readonly #registry: Registry;
  readonly #intervalMs: number;
  #last: Promise<string> | undefined;
  #lastAt = 0;

  constructor(registry: Registry, intervalMs: number) {
    this.#registry = registry;
    this.#intervalMs = intervalMs;
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  render(): Promise<string> {
    const now = Date.now();
    if (this.#last === undefined || now - this.#lastAt >= this.#intervalMs) {
      this.#lastAt = now;
      const rendering = this.#registry.metrics();
      // A failed render is not cached: the next scrape tries again.
      rendering.catch(() => {
        if (this.#last === rendering) this.#last = undefined;
      });
      this.#last = rendering;
    }
    return this.#last;
  }
}

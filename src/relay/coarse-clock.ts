/**
 * Milliseconds since the epoch, refreshed a few times a second: per-packet
 * bookkeeping (peer activity) needs minutes of precision, not a clock read.
 */
export class CoarseClock {
  #now = Date.now();
  readonly #timer: NodeJS.Timeout;

  constructor(resolutionMs = 250) {
    this.#timer = setInterval(() => (this.#now = Date.now()), resolutionMs);
    this.#timer.unref();
  }

  readonly now = (): number => this.#now;

  stop(): void {
    clearInterval(this.#timer);
  }
}

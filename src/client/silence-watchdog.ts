import { systemClock, type Clock, type TimerHandle } from '../time/clock.js';

/**
 * Calls `onSilence` once when `feed()` has not been called for `timeoutMs`.
 * The relay sends a health check every 25 s; a client that hears none for
 * 35 s treats the server as gone. Feeding only records the time and one
 * timer re-arms itself lazily, so frequent feeds cost no timer churn.
 */
export class SilenceWatchdog {
  readonly #timeoutMs: number;
  readonly #onSilence: () => void;
  readonly #clock: Clock;
  #lastFedAt = 0;
  #timer: TimerHandle | undefined;

  constructor(timeoutMs: number, onSilence: () => void, clock: Clock = systemClock) {
    this.#timeoutMs = timeoutMs;
    this.#onSilence = onSilence;
    this.#clock = clock;
  }

  /** Starts the countdown, or restarts it if it is running. */
  feed(): void {
    this.#lastFedAt = this.#clock.now();
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
  }

  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delayMs: number): void {
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      const silentFor = this.#clock.now() - this.#lastFedAt;
      if (silentFor < this.#timeoutMs) this.#arm(this.#timeoutMs - silentFor);
      else this.#onSilence();
    }, delayMs);
  }
}

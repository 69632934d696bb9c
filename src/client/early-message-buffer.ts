import type { PeerKey } from '../protocol/peer-id.js';
import { systemClock, type Clock, type TimerHandle } from '../time/clock.js';

export interface EarlyMessageBufferOptions {
  /** How long a message waits for its connection to be opened. */
  ttlMs: number;
  /** Most peers held at once; further messages are dropped. */
  capacity: number;
  clock?: Clock;
}

/**
 * Transport messages that arrive from a peer before the local side opened a
 * connection to it (typically the remote's first WireGuard handshake right
 * after a reconnect). One message per peer, the newest wins; expired entries
 * are removed by one timer that runs only while something is buffered.
 */
export class EarlyMessageBuffer {
  readonly #ttlMs: number;
  readonly #capacity: number;
  readonly #clock: Clock;
  // Map iteration order is insertion order, so the first entry is the oldest.
  readonly #entries = new Map<PeerKey, { payload: Buffer; storedAt: number }>();
  #timer: TimerHandle | undefined;

  constructor(options: EarlyMessageBufferOptions) {
    this.#ttlMs = options.ttlMs;
    this.#capacity = options.capacity;
    this.#clock = options.clock ?? systemClock;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Stores (or replaces) the message for `peer`; false when the buffer is full. */
  put(peer: PeerKey, payload: Buffer): boolean {
    this.#entries.delete(peer);
    if (this.#entries.size >= this.#capacity) return false;
    this.#entries.set(peer, { payload, storedAt: this.#clock.now() });
    if (this.#timer === undefined) this.#schedule(this.#ttlMs);
    return true;
  }

  /** Removes and returns the message waiting for `peer`, if it has not expired. */
  take(peer: PeerKey): Buffer | undefined {
    const entry = this.#entries.get(peer);
    if (!entry) return undefined;
    this.#entries.delete(peer);
    return this.#clock.now() - entry.storedAt <= this.#ttlMs ? entry.payload : undefined;
  }

  clear(): void {
    this.#entries.clear();
    this.#cancelTimer();
  }

  #schedule(delayMs: number): void {
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#expire();
    }, delayMs);
  }

  #expire(): void {
    const now = this.#clock.now();
    for (const [peer, entry] of this.#entries) {
      const age = now - entry.storedAt;
      if (age < this.#ttlMs) {
        this.#schedule(this.#ttlMs - age);
        return;
      }
      this.#entries.delete(peer);
    }
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

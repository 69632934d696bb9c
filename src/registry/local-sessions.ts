import type { Gauge } from 'prom-client';
import type { PeerKey } from '../protocol/peer-id.js';

/** A session of this instance; `registration.token` is updated in place when the session is restored. */
export interface LocalSession {
  readonly registration: { readonly peer: PeerKey; token: number };
  /** First token of the session; identifies it across restores. */
  readonly session: number;
}

/**
 * The sessions this instance registered, and which peers have an operation of ours (register,
 * unregister, restore) in flight: background work leaves those alone, their outcome is not known yet.
 */
export class LocalSessions {
  readonly #sessions = new Map<PeerKey, LocalSession>();
  readonly #inflight = new Map<PeerKey, number>();
  readonly #gauge: Gauge;

  constructor(gauge: Gauge) {
    this.#gauge = gauge;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get(peer: PeerKey): LocalSession | undefined {
    return this.#sessions.get(peer);
  }

  has(peer: PeerKey): boolean {
    return this.#sessions.has(peer);
  }

  /** The session's registration token, undefined when the peer has no session here. */
  tokenOf(peer: PeerKey): number | undefined {
    return this.#sessions.get(peer)?.registration.token;
  }

  add(peer: PeerKey, token: number): LocalSession {
    const session: LocalSession = { registration: { peer, token }, session: token };
    this.#sessions.set(peer, session);
    this.#gauge.set(this.#sessions.size);
    return session;
  }

  delete(peer: PeerKey): void {
    if (this.#sessions.delete(peer)) this.#gauge.set(this.#sessions.size);
  }

  entries(): IterableIterator<[PeerKey, LocalSession]> {
    return this.#sessions.entries();
  }

  /** Sessions with nothing of ours in flight. */
  settled(): LocalSession[] {
    return [...this.#sessions.values()].filter((local) => !this.#inflight.has(local.registration.peer));
  }

  /** Runs `operation` with `peer` marked in flight. */
  async during<T>(peer: PeerKey, operation: () => Promise<T>): Promise<T> {
    this.#inflight.set(peer, (this.#inflight.get(peer) ?? 0) + 1);
    try {
      return await operation();
    } finally {
      const count = (this.#inflight.get(peer) ?? 1) - 1;
      if (count === 0) this.#inflight.delete(peer);
      else this.#inflight.set(peer, count);
    }
  }

  inFlight(peer: PeerKey): boolean {
    return this.#inflight.has(peer);
  }
}

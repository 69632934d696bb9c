import type { PeerKey } from '../protocol/peer-id.js';
import type { RegistryState } from './redis-registry-state.js';

/**
 * Clean-ups that could not run while Redis was away, retried when it is back: unregisters that
 * failed (compare-and-delete makes a late one safe), and "suspects", peers whose register failed
 * in an unknown state (the script may have run before the reply was lost, leaving a registration
 * of ours that no session holds).
 */
export class DeferredCleanups {
  readonly #state: RegistryState;
  readonly #unregisters = new Map<PeerKey, Set<number>>();
  readonly #suspects = new Set<PeerKey>();

  constructor(state: RegistryState) {
    this.#state = state;
  }

  get pending(): number {
    let count = this.#suspects.size;
    for (const tokens of this.#unregisters.values()) count += tokens.size;
    return count;
  }

  unregisterLater(peer: PeerKey, token: number): void {
    let tokens = this.#unregisters.get(peer);
    if (!tokens) this.#unregisters.set(peer, (tokens = new Set()));
    tokens.add(token);
  }

  suspect(peer: PeerKey): void {
    this.#suspects.add(peer);
  }

  /** Runs what is pending (peers with an operation in flight wait); stops at the first Redis failure. */
  async run(): Promise<void> {
    const { sessions, instanceId, store } = this.#state;
    for (const [peer, tokens] of this.#unregisters) {
      if (sessions.inFlight(peer)) continue;
      try {
        for (const token of tokens) {
          await this.#state.compareAndDelete(peer, token);
          tokens.delete(token);
        }
        this.#unregisters.delete(peer);
      } catch {
        return;
      }
    }
    for (const peer of this.#suspects) {
      if (sessions.inFlight(peer)) continue;
      try {
        const stored = await store.readRoute(peer);
        const ours = sessions.tokenOf(peer);
        if (stored?.instance === instanceId && stored.token !== ours && !sessions.inFlight(peer)) {
          if (await this.#state.compareAndDelete(peer, stored.token))
            this.#state.metrics.orphansRemoved.inc();
        }
        this.#suspects.delete(peer);
      } catch {
        return;
      }
    }
  }
}

import type { PeerKey } from '../protocol/peer-id.js';
import type { RegistryState } from './redis-registry-state.js';

/** Lookups at once at most: a flood of sends to unknown peers costs Redis this much, no more. */
const MAX_BACKGROUND_LOOKUPS = 128;
/** Bounds the negative cache; when full it starts over (costs one lookup per peer). */
const MAX_NEGATIVE_ENTRIES = 100_000;

/**
 * Reads from Redis off the hot path, whose answers go through the route cache (so listeners stay
 * consistent with it): a peer the cache does not know (remembering "not registered" for a while,
 * so a sender to an absent peer does not cost a lookup per message), and a route the mesh said
 * is stale.
 */
export class BackgroundLookups {
  readonly #state: RegistryState;
  readonly #connected: () => boolean;
  readonly #negativeTtlMs: number;
  readonly #running = new Set<PeerKey>();
  readonly #negative = new Map<PeerKey, number>();

  constructor(options: { state: RegistryState; connected: () => boolean; negativeTtlMs: number }) {
    this.#state = options.state;
    this.#connected = options.connected;
    this.#negativeTtlMs = options.negativeTtlMs;
  }

  /** Lookups in flight now. */
  get running(): number {
    return this.#running.size;
  }

  /** The cache has no route for `peer`: ask Redis, unless it said "not registered" recently. */
  missing(peer: PeerKey): void {
    if (!this.#connected() || this.#running.has(peer) || this.#running.size >= MAX_BACKGROUND_LOOKUPS) return;
    const until = this.#negative.get(peer);
    if (until !== undefined && until > Date.now()) return;
    this.#run(peer, (stored, epoch) => {
      if (stored && epoch !== undefined) {
        this.#negative.delete(peer);
        this.#state.applyRoute(peer, stored, epoch);
      } else {
        if (this.#negative.size >= MAX_NEGATIVE_ENTRIES) this.#negative.clear();
        this.#negative.set(peer, Date.now() + this.#negativeTtlMs);
      }
    });
  }

  /**
   * The mesh was told "not here" by `instance` for `peer`: our route may be stale (a missed
   * event). Ask Redis and apply the answer.
   */
  verify(peer: PeerKey, instance: string): void {
    const route = this.#state.routes.get(peer);
    if (route?.instance !== instance || this.#running.has(peer) || !this.#connected()) return;
    this.#run(peer, (stored, epoch) => {
      if (epoch === undefined) return;
      if (stored) this.#state.applyRoute(peer, stored, epoch);
      else this.#state.applyOffline(peer, route.token, epoch);
    });
  }

  /** Forgets negative answers whose time is up (bounds memory between lookups). */
  purgeExpired(now: number): void {
    for (const [peer, until] of this.#negative) if (until <= now) this.#negative.delete(peer);
  }

  #run(
    peer: PeerKey,
    apply: (
      stored: Awaited<ReturnType<RegistryState['store']['readRoute']>>,
      epoch: string | undefined,
    ) => void,
  ): void {
    this.#running.add(peer);
    this.#state.store
      .readRoute(peer)
      .then((stored) => apply(stored, this.#state.epoch))
      .catch(() => {})
      .finally(() => this.#running.delete(peer));
  }
}

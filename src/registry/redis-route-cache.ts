import type { PeerKey } from '../protocol/peer-id.js';
import type { PeerEvent, PeerLocation } from './peer-registry.js';

/** A cached route: where the peer's newest known session lives. */
export interface RouteEntry extends PeerLocation {
  /** First token of the session (kept by a restore), to tell a re-registration from a new session. */
  readonly session: number;
  /** Apply counter value when this entry was written (a resync only removes entries older than its scan). */
  readonly appliedAt: number;
}

export type ApplyOutcome = 'applied' | 'refreshed' | 'duplicate' | 'stale';

export interface ApplyOptions {
  /** The value comes from a new data set after data loss: see applyOnline. */
  authoritative?: boolean;
}

interface Tombstone {
  token: number;
  expiresAt: number;
}

/** How long the token of a session that went offline is remembered to reject late events about it. */
const TOMBSTONE_TTL_MS = 60_000;

/**
 * Every peer's route, fed by the ordered event stream, resync diffs and
 * lookups. All of them go through the same fencing check: an event whose token
 * is older than the newest applied for that peer is dropped, so the listeners
 * see, per peer, a sequence of sessions with increasing tokens in which every
 * session's offline comes before the next session's online.
 */
export class RouteCache {
  readonly #routes = new Map<PeerKey, RouteEntry>();
  readonly #tombstones = new Map<PeerKey, Tombstone>();
  readonly #emit: (event: PeerEvent) => void;
  #applied = 0;

  constructor(emit: (event: PeerEvent) => void) {
    this.#emit = emit;
  }

  get(peer: PeerKey): RouteEntry | undefined {
    return this.#routes.get(peer);
  }

  get size(): number {
    return this.#routes.size;
  }

  /** Increases with every change; compare with RouteEntry.appliedAt. */
  get appliedCount(): number {
    return this.#applied;
  }

  entries(): IterableIterator<[PeerKey, RouteEntry]> {
    return this.#routes.entries();
  }

  newestToken(peer: PeerKey): number {
    return Math.max(this.#routes.get(peer)?.token ?? 0, this.#tombstones.get(peer)?.token ?? 0);
  }

  /**
   * `options.authoritative`: the value was just read from a new data set (after
   * data loss), whose tokens need not exceed the old ones; it wins unless equal.
   */
  applyOnline(
    peer: PeerKey,
    instance: string,
    token: number,
    session: number,
    epoch: string,
    { authoritative = false }: ApplyOptions = {},
  ): ApplyOutcome {
    const current = this.#routes.get(peer);
    const newest = authoritative ? (current?.token ?? 0) : this.newestToken(peer);
    if (token === newest) return 'duplicate';
    if (token < newest && !authoritative) return 'stale';
    const entry: RouteEntry = { instance, token, session, appliedAt: ++this.#applied };
    this.#tombstones.delete(peer);
    if (current && current.instance === instance && current.session === session) {
      // The same session registered again (after data loss): nothing changed for subscribers.
      this.#routes.set(peer, entry);
      return 'refreshed';
    }
    if (current) {
      // We missed the offline of the session this one replaced: announce it first.
      this.#routes.delete(peer);
      this.#emit({ kind: 'offline', peer, instance: current.instance, token: current.token, epoch });
    }
    this.#routes.set(peer, entry);
    this.#emit({ kind: 'online', peer, instance, token, epoch });
    return 'applied';
  }

  applyOffline(peer: PeerKey, token: number, epoch: string): ApplyOutcome {
    const current = this.#routes.get(peer);
    if (!current) {
      const tombstone = this.#tombstones.get(peer);
      if (tombstone && token < tombstone.token) return 'stale';
      if (tombstone?.token === token) return 'duplicate';
      this.#bury(peer, token);
      return 'duplicate';
    }
    if (token < current.token) return 'stale';
    this.#routes.delete(peer);
    this.#bury(peer, token);
    ++this.#applied;
    // Subscribers knew the cached session: that is the one that went offline.
    this.#emit({ kind: 'offline', peer, instance: current.instance, token: current.token, epoch });
    return 'applied';
  }

  /** After data loss tokens of the old data set mean nothing. */
  forgetTombstones(): void {
    this.#tombstones.clear();
  }

  purgeExpiredTombstones(now: number): void {
    for (const [peer, tombstone] of this.#tombstones) {
      if (tombstone.expiresAt <= now) this.#tombstones.delete(peer);
    }
  }

  #bury(peer: PeerKey, token: number): void {
    const previous = this.#tombstones.get(peer)?.token ?? 0;
    this.#tombstones.set(peer, {
      token: Math.max(previous, token),
      expiresAt: Date.now() + TOMBSTONE_TTL_MS,
    });
  }
}

import type { PeerKey } from '../protocol/peer-id.js';

/** Where a peer's newest session lives, and the fencing token it was registered with. */
export interface PeerLocation {
  readonly instance: string;
  readonly token: number;
}

/**
 * A change of a peer's registration. Events of one peer arrive in the order the
 * registry applied them; a replaced session yields offline(old) then online(new).
 */
export interface PeerEvent {
  readonly kind: 'online' | 'offline';
  readonly peer: PeerKey;
  readonly instance: string;
  /** Fencing token of the session this event is about. */
  readonly token: number;
  /** Identity of the registry's data set; a change means the data was lost. */
  readonly epoch: string;
}

export type PeerEventListener = (event: PeerEvent) => void;

/** A session's registration; the registry updates `token` if it must re-register (data loss). */
export interface Registration {
  readonly peer: PeerKey;
  readonly token: number;
}

/**
 * The shared peer registry. The relay layer sees only this; the memory and
 * Redis implementations slot in behind it.
 */
export interface PeerRegistry {
  /** Identity of this process in the registry (new on every start). */
  readonly instanceId: string;

  /**
   * Registers a session of `peer` on this instance. Its fencing token is
   * strictly greater than any earlier token of that peer. When an older session
   * was registered, offline(old) is emitted before online(new). Calls for one
   * peer must not overlap (the relay serialises them).
   */
  register(peer: PeerKey): Promise<Registration>;

  /**
   * Compare-and-delete: removes the registration only if its token is still the
   * current one, emitting offline. Returns whether it did; a stale call is a no-op.
   */
  unregister(registration: Registration): Promise<boolean>;

  /** The local view (route cache), answered synchronously so a subscribe can be atomic with it. */
  locate(peer: PeerKey): PeerLocation | undefined;

  /** The authoritative answer; may cost a round trip. */
  lookup(peer: PeerKey): Promise<PeerLocation | undefined>;

  /** Adds a listener to the ordered event stream; returns a function that removes it. */
  onEvent(listener: PeerEventListener): () => void;

  /** Why registrations and events are not flowing (readiness), or undefined while they are. */
  notReadyReason(): string | undefined;

  close(): Promise<void>;
}

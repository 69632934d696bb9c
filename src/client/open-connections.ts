import type { PeerKey } from '../protocol/peer-id.js';
import { formatPeerKey } from '../protocol/peer-id.js';
import type { PeerConnection, PeerConnectionControl } from './peer-connection.js';
import { RelayClientError, type RelayClientErrorCode } from './relay-client-error.js';

interface PendingOpen {
  resolve(): void;
  reject(error: RelayClientError): void;
}

/** A peer connection of the client; `pending` while openConn waits for the peer to come online. */
export interface OpenConnection {
  connection: PeerConnection;
  control: PeerConnectionControl;
  pending?: PendingOpen;
}

/**
 * The client's peer connections, one per peer, and how each ends. The methods
 * that end a connection return whether it was still the current one, so the
 * client unsubscribes exactly once.
 */
export class OpenConnections {
  readonly #byPeer = new Map<PeerKey, OpenConnection>();

  get size(): number {
    return this.#byPeer.size;
  }

  has(peer: PeerKey): boolean {
    return this.#byPeer.has(peer);
  }

  get(peer: PeerKey): OpenConnection | undefined {
    return this.#byPeer.get(peer);
  }

  /** Whether `entry` is the current connection to its peer. */
  holds(entry: OpenConnection): boolean {
    return this.#byPeer.get(entry.connection.peerKey) === entry;
  }

  add(entry: OpenConnection): void {
    this.#byPeer.set(entry.connection.peerKey, entry);
  }

  /** The relay says these peers are online: their openConn calls return. */
  markOnline(peers: readonly PeerKey[]): void {
    for (const key of peers) {
      const entry = this.#byPeer.get(key);
      const pending = entry?.pending;
      if (!entry || !pending) continue;
      entry.pending = undefined;
      pending.resolve();
    }
  }

  /** The relay says these peers went offline: their connections close; returns the ones closed. */
  closeOffline(peers: readonly PeerKey[], onClosed: (peer: PeerKey) => void): PeerKey[] {
    const closed: PeerKey[] = [];
    for (const key of peers) {
      const entry = this.#byPeer.get(key);
      if (!entry) continue;
      this.#byPeer.delete(key);
      closed.push(key);
      onClosed(key);
      entry.pending?.reject(new RelayClientError('peer_offline', `peer ${formatPeerKey(key)} went offline`));
      entry.pending = undefined;
      entry.control.markClosed('peer_offline');
    }
    return closed;
  }

  /** openConn gave up (timeout, abort); false if the connection was already gone or open. */
  failOpen(entry: OpenConnection, error: RelayClientError): boolean {
    const pending = entry.pending;
    if (!pending || !this.holds(entry)) return false;
    this.#byPeer.delete(entry.connection.peerKey);
    entry.pending = undefined;
    entry.control.markClosed('open_failed');
    pending.reject(error);
    return true;
  }

  /** The owner closed the connection; false if it was already gone. */
  closeByOwner(entry: OpenConnection): boolean {
    if (!this.holds(entry)) return false;
    this.#byPeer.delete(entry.connection.peerKey);
    entry.pending?.reject(
      new RelayClientError(
        'connection_closed',
        `connection to ${entry.connection.peerName} was closed while opening`,
      ),
    );
    entry.pending = undefined;
    entry.control.markClosed('closed_by_owner');
    return true;
  }

  /** The relay session ended: every connection closes, every waiting openConn fails with `code`. */
  endAll(code: RelayClientErrorCode): void {
    const entries = [...this.#byPeer.values()];
    this.#byPeer.clear();
    for (const entry of entries) {
      entry.pending?.reject(
        new RelayClientError(code, `relay session ended while opening ${entry.connection.peerName}`),
      );
      entry.pending = undefined;
      entry.control.markClosed('relay_disconnected');
    }
  }
}

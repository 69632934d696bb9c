import { randomUUID } from 'node:crypto';
import type { PeerKey } from '../protocol/peer-id.js';
import { EventFanout } from './event-fanout.js';
import type { PeerEventListener, PeerLocation, PeerRegistry, Registration } from './peer-registry.js';

/**
 * Standalone registry: one process, same guarantees as the shared one
 * (strictly increasing tokens, offline-then-online on replace, compare-and-delete).
 * One counter serves every peer, so tokens rise per peer without a per-peer
 * entry that would outlive the peer.
 */
export class MemoryRegistry implements PeerRegistry {
  readonly instanceId: string;
  readonly #epoch = randomUUID();
  readonly #entries = new Map<PeerKey, PeerLocation>();
  readonly #fanout: EventFanout;
  #nextToken = 1;

  constructor(options: { instanceId?: string; onListenerError?: (err: unknown) => void } = {}) {
    this.instanceId = options.instanceId ?? randomUUID();
    this.#fanout = new EventFanout(options.onListenerError ?? (() => {}));
  }

  async register(peer: PeerKey): Promise<Registration> {
    const token = this.#nextToken++;
    const previous = this.#entries.get(peer);
    const current: PeerLocation = { instance: this.instanceId, token };
    this.#entries.set(peer, current);
    if (previous) this.#emit('offline', peer, previous);
    this.#emit('online', peer, current);
    return { peer, token };
  }

  async unregister({ peer, token }: Registration): Promise<boolean> {
    const current = this.#entries.get(peer);
    if (current?.token !== token) return false;
    this.#entries.delete(peer);
    this.#emit('offline', peer, current);
    return true;
  }

  locate(peer: PeerKey): PeerLocation | undefined {
    return this.#entries.get(peer);
  }

  async lookup(peer: PeerKey): Promise<PeerLocation | undefined> {
    return this.#entries.get(peer);
  }

  onEvent(listener: PeerEventListener): () => void {
    return this.#fanout.add(listener);
  }

  notReadyReason(): string | undefined {
    return undefined;
  }

  async close(): Promise<void> {}

  #emit(kind: 'online' | 'offline', peer: PeerKey, location: PeerLocation): void {
    this.#fanout.emit({ kind, peer, instance: location.instance, token: location.token, epoch: this.#epoch });
  }
}

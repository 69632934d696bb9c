import { encodeAuthResponse, encodePeerLists, rewriteTransportPeer } from '../protocol/codec.js';
import { MessageType } from '../protocol/constants.js';
import { formatPeerKey, type PeerKey } from '../protocol/peer-id.js';
import type { Logger } from '../observability/logger.js';
import type { RelayMetrics } from './relay-metrics.js';
import type { SessionCloseReason } from './relay-vocabulary.js';
import type { PeerEvent, PeerRegistry } from '../registry/peer-registry.js';
import { KeyedSerializer } from './keyed-serializer.js';
import { PeerInterest } from './peer-interest.js';
import type { PeerSession, SessionHost } from './peer-session.js';
import type { RemoteDelivery } from './remote-delivery.js';

export interface RelayOptions {
  readonly instanceUrl: string;
  readonly registry: PeerRegistry;
  readonly metrics: RelayMetrics;
  readonly logger: Logger;
  /** Delivery to peers on other instances; absent in standalone mode. */
  readonly remote?: RemoteDelivery;
  /** Most peers one session may hold interest in. */
  readonly maxSubscriptionsPerSession?: number;
}

const DEFAULT_MAX_SUBSCRIPTIONS = 65_536;

/**
 * The relay proper: the local session table, routing of transport messages,
 * peer-state interest and the reaction to registry events. It knows the
 * registry only through its interface.
 */
export class Relay implements SessionHost {
  readonly #sessions = new Map<PeerKey, PeerSession>();
  readonly #interest = new PeerInterest<PeerSession>();
  readonly #registrations = new KeyedSerializer<PeerKey>();
  readonly #options: RelayOptions;
  readonly #authResponse: Buffer;
  #maxSubscriptions: number;
  readonly #unsubscribeEvents: () => void;
  readonly #connected = new Set<PeerSession>();
  #shedding = false;

  constructor(options: RelayOptions) {
    this.#options = options;
    this.#authResponse = encodeAuthResponse(options.instanceUrl);
    this.#maxSubscriptions = options.maxSubscriptionsPerSession ?? DEFAULT_MAX_SUBSCRIPTIONS;
    this.#unsubscribeEvents = options.registry.onEvent((event) => this.#onRegistryEvent(event));
    options.metrics.attachActivitySource({
      forEachPeerActivity: (visit) => {
        for (const session of this.#sessions.values())
          if (session.state === 'active') visit(session.lastActivityMs);
      },
    });
  }

  get peerCount(): number {
    return this.#sessions.size;
  }

  /**
   * Hands a message from another instance to a local peer; false when the peer
   * is not here. `message` is a view into a mesh frame with FRAME_HEADER_ROOM
   * bytes before it that may be overwritten.
   */
  deliverLocal(peer: PeerKey, message: Buffer): boolean {
    const session = this.#sessions.get(peer);
    if (!session) return false;
    session.sendForwardedData(message);
    return true;
  }

  admit(session: PeerSession): void {
    const peer = session.peerKey as PeerKey;
    this.#connected.add(session);
    const previous = this.#sessions.get(peer);
    // The newest session wins at once; the old one is closed without a relay close message.
    this.#sessions.set(peer, session);
    if (previous) {
      this.#options.metrics.reconnections.inc();
      this.#options.logger.info(
        { peer_id: formatPeerKey(peer) },
        'peer reconnected, replacing older session',
      );
      previous.close('replaced');
    }
    const started = performance.now();
    this.#registrations
      .run(peer, () => this.#options.registry.register(peer))
      .then(
        (registration) => {
          this.#options.metrics.storeTime.observe(performance.now() - started);
          if (session.state !== 'admitting' || this.#sessions.get(peer) !== session) {
            // The session ended (or was replaced) while it registered: take the registration back.
            void this.#registrations.run(peer, () => this.#options.registry.unregister(registration));
            return;
          }
          const current = this.#options.registry.locate(peer);
          if (current && current.token > registration.token) {
            // A newer session of this peer registered on another instance before our reply
            // came back (its online event was applied first): ours must never become routable.
            this.#sessions.delete(peer);
            session.close('superseded');
            return;
          }
          session.activate(registration, this.#authResponse);
          this.#options.logger.info(
            { peer_id: session.printableId, remote: session.remoteAddress },
            'peer connected',
          );
        },
        (err: unknown) => {
          this.#options.logger.warn(
            { peer_id: session.printableId, err },
            'registration failed, refusing connection',
          );
          session.reject('registry_unavailable');
        },
      );
  }

  transport(session: PeerSession, message: Buffer): void {
    const destination = session.destinationOf(message);
    rewriteTransportPeer(message, session.peerId as Buffer);
    const local = this.#sessions.get(destination);
    if (local) {
      local.sendData(message);
      return;
    }
    const location = this.#options.registry.locate(destination);
    if (location && location.instance !== this.#options.registry.instanceId && this.#options.remote) {
      this.#options.remote.forward(location.instance, destination, message);
      return;
    }
    this.#options.metrics.stats.drops.unknown_peer++;
  }

  /** A live change of the subscription cap; sessions already above it keep what they have. */
  setMaxSubscriptionsPerSession(max: number): void {
    this.#maxSubscriptions = max;
  }

  subscribe(session: PeerSession, peers: PeerKey[]): void {
    if (this.#interest.countFor(session) + peers.length > this.#maxSubscriptions) {
      this.#options.logger.warn(
        { peer_id: session.printableId },
        'subscription limit exceeded, closing session',
      );
      session.close('subscription_limit');
      return;
    }
    // Interest and the answer come from the same synchronous view: no event can fall between them.
    const online: PeerKey[] = [];
    for (const peer of peers) {
      this.#interest.subscribe(session, peer);
      if (this.#options.registry.locate(peer)) online.push(peer);
    }
    this.#sendPeerState(session, MessageType.PeersOnline, online);
  }

  unsubscribe(session: PeerSession, peers: PeerKey[]): void {
    for (const peer of peers) this.#interest.unsubscribe(session, peer);
  }

  ended(session: PeerSession, reason: SessionCloseReason): void {
    this.#connected.delete(session);
    this.#interest.removeSubscriber(session);
    const peer = session.peerKey as PeerKey;
    if (this.#sessions.get(peer) === session) this.#sessions.delete(peer);
    if (reason !== 'replaced' && reason !== 'superseded') {
      this.#options.logger.info({ peer_id: session.printableId, reason }, 'peer disconnected');
    }
    const registration = session.registration;
    if (registration && reason !== 'superseded' && reason !== 'registration_lost') {
      // Compare-and-delete: if a newer session took over meanwhile, this changes nothing.
      void this.#registrations
        .run(peer, () => this.#options.registry.unregister(registration))
        .catch((err: unknown) =>
          this.#options.logger.warn(
            { peer_id: session.printableId, err },
            'unregister failed; the registry will reap it',
          ),
        );
    }
  }

  /**
   * Graceful drain: every peer gets the relay close message, spread evenly
   * over `windowMs` so they do not all reconnect at the same instant.
   */
  async drain(windowMs: number): Promise<void> {
    await closeSpread([...this.#connected], windowMs, 'drain');
    await this.#registrations.idle();
  }

  /**
   * Rebalancing: asks `count` peers to reconnect (through the load balancer,
   * likely to a less loaded pod), spread over `windowMs`. Resolves with the
   * number actually closed.
   */
  async shed(count: number, windowMs: number): Promise<number> {
    // One round at a time: a new leader may ask again before the closes of the last round are done.
    if (this.#shedding) {
      this.#options.logger.info({ requested: count }, 'already shedding peers; request ignored');
      return 0;
    }
    const victims: PeerSession[] = [];
    for (const session of this.#sessions.values()) {
      if (victims.length >= count) break;
      if (session.state === 'active') victims.push(session);
    }
    this.#options.logger.info(
      { requested: count, shedding: victims.length, window_ms: windowMs },
      'shedding peers',
    );
    this.#shedding = true;
    try {
      await closeSpread(victims, windowMs, 'rebalance');
    } finally {
      this.#shedding = false;
    }
    return victims.length;
  }

  close(): void {
    this.#unsubscribeEvents();
  }

  #onRegistryEvent(event: PeerEvent): void {
    const local = this.#sessions.get(event.peer);
    const localToken = local?.registration?.token;
    if (event.kind === 'online') {
      if (local && localToken !== undefined && event.token > localToken) {
        // A newer session registered (on another instance): ours must stop being routable, quietly.
        this.#sessions.delete(event.peer);
        local.close('superseded');
      }
      const subscribers = this.#interest.takeOnlineInterest(event.peer);
      for (const subscriber of subscribers)
        this.#sendPeerState(subscriber, MessageType.PeersOnline, [event.peer]);
    } else {
      if (local && localToken === event.token) {
        // Our registration was removed by someone else (reaped): the session can no longer be reached.
        this.#sessions.delete(event.peer);
        local.close('registration_lost');
      }
      for (const subscriber of this.#interest.offlineInterest(event.peer)) {
        this.#sendPeerState(subscriber, MessageType.PeersWentOffline, [event.peer]);
      }
    }
  }

  #sendPeerState(session: PeerSession, type: MessageType, peers: PeerKey[]): void {
    if (peers.length === 0) return;
    const kind = type === MessageType.PeersOnline ? 'online' : 'offline';
    for (const message of encodePeerLists(type, peers)) {
      session.sendControl(message);
      this.#options.metrics.peerStateNotices.labels(kind).inc();
    }
  }
}

/** Sends the relay close message to each session, evenly spaced over the window. */
function closeSpread(
  sessions: PeerSession[],
  windowMs: number,
  reason: 'drain' | 'rebalance',
): Promise<void> {
  const step = sessions.length > 1 ? windowMs / sessions.length : 0;
  return new Promise<void>((resolve) => {
    if (sessions.length === 0) return resolve();
    let index = 0;
    const next = (): void => {
      sessions[index++]?.sendCloseAndEnd(reason);
      if (index >= sessions.length) return resolve();
      setTimeout(next, step);
    };
    next();
  });
}

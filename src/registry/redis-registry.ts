import type { Logger } from 'pino';
import { formatPeerKey, type PeerKey } from '../protocol/peer-id.js';
import { EventFanout } from './event-fanout.js';
import { LocalSessions } from './local-sessions.js';
import type {
  PeerEvent,
  PeerEventListener,
  PeerLocation,
  PeerRegistry,
  Registration,
} from './peer-registry.js';
import { ConnectionHealth } from './redis-connection-health.js';
import { DeferredCleanups } from './redis-deferred-cleanups.js';
import { BackgroundLookups } from './redis-lookups.js';
import type { RedisRegistryMetrics } from './redis-registry-metrics.js';
import { RegistryState } from './redis-registry-state.js';
import { Resync } from './redis-resync.js';
import { RouteCache } from './redis-route-cache.js';
import type { RedisConnections } from './redis/connections.js';
import { decodeRedisPeerEvent } from './redis/event-codec.js';
import type { RedisKeys } from './redis/keys.js';
import { settledWithin } from '../time/deadline.js';
import { RedisStore } from './redis/store.js';

/** Thrown by register() while Redis cannot take registrations; the relay refuses the connection. */
export class RegistryUnavailableError extends Error {
  constructor(reason: string) {
    super(`peer registry unavailable: ${reason}`);
    this.name = 'RegistryUnavailableError';
  }
}

export interface RedisRegistryOptions {
  connections: RedisConnections;
  keys: RedisKeys;
  instanceId: string;
  logger: Logger;
  metrics: RedisRegistryMetrics;
  /** Life of a hash slot's token floor after the last registration in the slot. */
  tokenFloorTtlSeconds?: number;
  /** After data loss, time the other pods get to restore their sessions before we call them gone. */
  restoreGraceMs?: number;
  /** How long a "not registered" answer is trusted before asking Redis again. */
  negativeLookupTtlMs?: number;
}

const MAINTENANCE_INTERVAL_MS = 1_000;

/**
 * The shared peer registry on Redis (single primary, Sentinel or Cluster).
 *
 * Writes are Lua scripts (one per peer, atomic, publishing the events
 * themselves). Reads are answered from a route cache that holds every peer of
 * the cluster, fed by one pub/sub subscription. Pub/sub is at-most-once, so any
 * reconnect (or a change of the data set's epoch) triggers a resync: reload,
 * diff, emit the differences through the same ordered stream. Until that
 * finished the registry reports unhealthy.
 *
 * While Redis is unreachable register() rejects at once (the relay refuses the
 * connection, the client retries elsewhere/later), existing routes stay
 * usable, and unregisters are kept and retried (compare-and-delete makes late
 * retries safe).
 *
 * This class is the facade: its parts are ConnectionHealth, Resync, BackgroundLookups and
 * DeferredCleanups, sharing a RegistryState; the Redis data is reached through RedisStore.
 */
export class RedisRegistry implements PeerRegistry {
  readonly instanceId: string;
  readonly store: RedisStore;
  readonly #tokenFloorTtl: number;
  readonly #fanout: EventFanout;
  readonly #state: RegistryState;
  readonly #health: ConnectionHealth;
  readonly #resync: Resync;
  readonly #lookups: BackgroundLookups;
  readonly #cleanups: DeferredCleanups;
  #closed = false;
  #maintenance: NodeJS.Timeout | undefined;

  constructor(options: RedisRegistryOptions) {
    this.instanceId = options.instanceId;
    this.#tokenFloorTtl = options.tokenFloorTtlSeconds ?? 7 * 24 * 3600;
    const { logger, metrics } = options;
    this.#fanout = new EventFanout((err) => logger.error({ err }, 'peer event listener failed'));
    this.store = new RedisStore({
      redis: options.connections.command,
      keys: options.keys,
      scanTargets: () => options.connections.scanTargets(),
    });
    this.#state = new RegistryState({
      instanceId: options.instanceId,
      store: this.store,
      routes: new RouteCache((event) => this.#emit(event)),
      sessions: new LocalSessions(metrics.localPeers),
      metrics,
      logger,
    });
    const connected = (): boolean => this.#health.commandUp && this.#health.subscriptionUp;
    this.#resync = new Resync({
      state: this.#state,
      connected,
      tokenFloorTtlSeconds: this.#tokenFloorTtl,
      restoreGraceMs: options.restoreGraceMs ?? 2_000,
    });
    this.#health = new ConnectionHealth({
      connections: options.connections,
      channel: options.keys.events,
      logger,
      metrics,
      hooks: {
        onChange: (connection, up) => {
          if (!up) this.#resync.markUnsynced();
          // Commands or events may have been lost with the old connection: reconcile.
          else this.#resync.request(connection === 'command' ? 'redis_reconnect' : 'subscription_reconnect');
        },
        // Its replica may lack the last writes: every pod re-reads the routes and puts its own back.
        onClusterNodeLost: () => this.#resync.noteClusterNodeLost(),
        onMessage: (message) => this.#onMessage(message),
      },
    });
    this.#lookups = new BackgroundLookups({
      state: this.#state,
      connected: () => this.#health.commandUp,
      negativeTtlMs: options.negativeLookupTtlMs ?? 1_000,
    });
    this.#cleanups = new DeferredCleanups(this.#state);
  }

  /** Connects and subscribes; resolves after the first resync, or after `timeoutMs` (still trying). */
  async start(timeoutMs = 5_000): Promise<void> {
    this.#health.start();
    this.#maintenance = setInterval(() => void this.#maintain(), MAINTENANCE_INTERVAL_MS);
    this.#maintenance.unref();
    await settledWithin(this.#resync.firstSync, timeoutMs);
  }

  get epoch(): string | undefined {
    return this.#state.epoch;
  }

  notReadyReason(): string | undefined {
    return this.#health.reason() ?? (this.#resync.synced ? undefined : 'resynchronising with redis');
  }

  async register(peer: PeerKey): Promise<Registration> {
    const state = this.#state;
    const epoch = state.epoch;
    if (!this.#health.commandUp || epoch === undefined) {
      throw new RegistryUnavailableError(this.notReadyReason() ?? 'redis unreachable');
    }
    const started = performance.now();
    return state.sessions.during(peer, async () => {
      try {
        // Index first: if we die right after the script, the reaper still finds the session.
        await state.store.indexSession(this.instanceId, peer);
        const { token, previous } = await state.store.register(
          peer,
          this.instanceId,
          epoch,
          this.#tokenFloorTtl,
        );
        if (state.routes.newestToken(peer) > token) {
          // A newer session of this peer registered elsewhere and its event reached us before
          // this reply: ours lost the race. It is not ours to keep, restore or announce.
          state.dropFromIndex(peer);
          state.observe('register', 'superseded', started);
          return { peer, token };
        }
        const local = state.sessions.add(peer, token);
        // Apply our own result at once (the pub/sub copy arrives later and is a duplicate).
        if (previous) state.applyOffline(peer, previous.token, epoch);
        state.applyRoute(peer, { instance: this.instanceId, token, session: token }, epoch);
        state.observe('register', 'ok', started);
        return local.registration;
      } catch (err) {
        // The script may have run before the connection failed: check later.
        this.#cleanups.suspect(peer);
        state.observe('register', 'error', started);
        throw err instanceof RegistryUnavailableError ? err : new RegistryUnavailableError(String(err));
      }
    });
  }

  async unregister(registration: Registration): Promise<boolean> {
    const { peer, token } = registration;
    const state = this.#state;
    if (state.sessions.get(peer)?.registration === registration) state.sessions.delete(peer);
    const started = performance.now();
    return state.sessions.during(peer, async () => {
      try {
        const removed = await state.compareAndDelete(peer, token);
        state.observe('unregister', removed ? 'ok' : 'stale', started);
        return removed;
      } catch (err) {
        state.observe('unregister', 'error', started);
        state.logger.warn({ peer_id: formatPeerKey(peer), err }, 'unregister deferred until redis is back');
        this.#cleanups.unregisterLater(peer, token);
        return false;
      }
    });
  }

  locate(peer: PeerKey): PeerLocation | undefined {
    const route = this.#state.routes.get(peer);
    if (route === undefined) this.#lookups.missing(peer);
    return route;
  }

  async lookup(peer: PeerKey): Promise<PeerLocation | undefined> {
    const started = performance.now();
    const stored = await this.store.readRoute(peer);
    this.#state.observe('lookup', 'ok', started);
    return stored && { instance: stored.instance, token: stored.token };
  }

  onEvent(listener: PeerEventListener): () => void {
    return this.#fanout.add(listener);
  }

  /** The mesh was told "not here" by `instance` for `peer`: re-read the route (see BackgroundLookups). */
  verifyRoute(peer: PeerKey, instance: string): void {
    this.#lookups.verify(peer, instance);
  }

  /** Called by the membership heartbeat with what it read from Redis (see Resync.noteHeartbeat). */
  noteHeartbeat(epoch: string, { membershipLost }: { membershipLost: boolean }): void {
    this.#resync.noteHeartbeat(epoch, { membershipLost });
  }

  /** Peers registered by this instance (the reaper of a restarted pod uses the Redis index instead). */
  get localSessionCount(): number {
    return this.#state.sessions.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#maintenance);
    this.#resync.close();
    await this.#health.close();
  }

  /** Every event the route cache emits passes here first: it keeps the local sessions in step. */
  #emit(event: PeerEvent): void {
    const { sessions } = this.#state;
    const local = sessions.get(event.peer);
    if (
      event.kind === 'offline' &&
      local?.registration.token === event.token &&
      event.instance === this.instanceId
    ) {
      // Someone removed our registration (we were reaped while alive): the relay ends that
      // session, so it is no longer ours to restore.
      sessions.delete(event.peer);
    }
    if (event.kind === 'online') {
      // A newer session elsewhere replaced one of ours: the relay closes it quietly
      // (it listens to the same event); we stop counting it as ours.
      if (local && local.registration.token < event.token && event.instance !== this.instanceId) {
        sessions.delete(event.peer);
        if (!sessions.inFlight(event.peer)) this.#state.dropFromIndex(event.peer);
      }
    }
    this.#state.metrics.routes.set(this.#state.routes.size);
    this.#fanout.emit(event);
  }

  #onMessage(message: string): void {
    const state = this.#state;
    const event = decodeRedisPeerEvent(message);
    if (!event) {
      state.logger.warn('ignoring malformed peer event');
      return;
    }
    state.metrics.eventLagSeconds.observe(Math.max(0, Date.now() - event.publishedAt) / 1000);
    if (state.epoch !== undefined && event.epoch !== state.epoch) this.#resync.checkEpoch();
    const outcome =
      event.kind === 'online'
        ? state.routes.applyOnline(event.peer, event.instance, event.token, event.session, event.epoch)
        : state.routes.applyOffline(event.peer, event.token, event.epoch);
    state.count(outcome);
    if (state.logger.isLevelEnabled('trace')) {
      state.logger.trace({ peer_id: formatPeerKey(event.peer), event: message, outcome }, 'peer event');
    }
  }

  async #maintain(): Promise<void> {
    const now = Date.now();
    this.#state.routes.purgeExpiredTombstones(now);
    this.#lookups.purgeExpired(now);
    if (!this.#health.commandUp || this.#state.epoch === undefined) return;
    await this.#cleanups.run();
  }
}

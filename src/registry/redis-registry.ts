import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { formatPeerKey, type PeerKey } from '../protocol/peer-id.js';
import { EventFanout } from './event-fanout.js';
import type {
  PeerEvent,
  PeerEventListener,
  PeerLocation,
  PeerRegistry,
  Registration,
} from './peer-registry.js';
import { CLUSTER_SLOTS_REFRESH_MS, connectRedis, type RedisConnections } from './redis/connections.js';
import { decodeRedisPeerEvent, decodeStoredRoute, type StoredRoute } from './redis/event-codec.js';
import { printedPeer, type RedisKeys } from './redis/keys.js';
import type { RedisRegistryMetrics } from './redis-registry-metrics.js';
import { RouteCache, type ApplyOutcome } from './redis-route-cache.js';
import { scripts } from './redis/script.js';

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
  /** Life of a peer's token floor after its last use. */
  tokenFloorTtlSeconds?: number;
  /** After data loss, time the other pods get to restore their sessions before we call them gone. */
  restoreGraceMs?: number;
  /** How long a "not registered" answer is trusted before asking Redis again. */
  negativeLookupTtlMs?: number;
}

/** A session of this instance; `registration.token` is updated in place when the session is restored. */
interface LocalSession {
  readonly registration: { readonly peer: PeerKey; token: number };
  /** First token of the session; identifies it across restores. */
  readonly session: number;
}

const MAINTENANCE_INTERVAL_MS = 1_000;
const MAX_BACKGROUND_LOOKUPS = 128;
const MAX_NEGATIVE_ENTRIES = 100_000;
const RESTORE_CONCURRENCY = 64;
const SCAN_BATCH = 1_000;

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
 */
export class RedisRegistry implements PeerRegistry {
  readonly instanceId: string;
  readonly #connections: RedisConnections;
  readonly #keys: RedisKeys;
  readonly #logger: Logger;
  readonly #metrics: RedisRegistryMetrics;
  readonly #tokenFloorTtl: number;
  readonly #restoreGraceMs: number;
  readonly #negativeTtlMs: number;
  readonly #fanout: EventFanout;
  readonly #routes: RouteCache;
  readonly #local = new Map<PeerKey, LocalSession>();
  /** Peers with a register/unregister/restore of ours in flight: a resync leaves them alone. */
  readonly #inflight = new Map<PeerKey, number>();
  /** Unregisters that failed for lack of Redis, retried when it is back. */
  readonly #pendingUnregisters = new Map<PeerKey, Set<number>>();
  /** Peers whose register failed in an unknown state: a registration of ours may sit in Redis. */
  readonly #suspects = new Set<PeerKey>();
  readonly #negative = new Map<PeerKey, number>();
  readonly #lookups = new Set<PeerKey>();
  /** Routes missing after data loss, confirmed gone (or not) after the restore grace period. */
  readonly #absent = new Map<PeerKey, number>();
  #absentTimer: NodeJS.Timeout | undefined;
  #epoch: string | undefined;
  #epochChangePending = false;
  #epochChangedAt = -Infinity;
  /** When Redis may have lost part of its data (a Redis Cluster failover), as for an epoch change. */
  #possibleLossAt = -Infinity;
  #commandUp = false;
  #subscriptionUp = false;
  #synced = false;
  #resyncRunning = false;
  #resyncReasons = new Set<string>();
  #restoreNeeded = false;
  /** Why each connection last failed (message only, never the failed command), until it is ready again. */
  readonly #connectionErrors: { command?: string; subscriber?: string } = {};
  /** Failures logged at warn per connection since it was last ready: a retried failure is logged once. */
  readonly #loggedErrors = { command: new Set<string>(), subscriber: new Set<string>() };
  #epochCheckRunning = false;
  #closed = false;
  #maintenance: NodeJS.Timeout | undefined;
  readonly #firstSync: Promise<void>;
  #firstSyncDone!: () => void;

  constructor(options: RedisRegistryOptions) {
    this.instanceId = options.instanceId;
    this.#connections = options.connections;
    this.#keys = options.keys;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#tokenFloorTtl = options.tokenFloorTtlSeconds ?? 7 * 24 * 3600;
    this.#restoreGraceMs = options.restoreGraceMs ?? 2_000;
    this.#negativeTtlMs = options.negativeLookupTtlMs ?? 1_000;
    this.#fanout = new EventFanout((err) => this.#logger.error({ err }, 'peer event listener failed'));
    this.#routes = new RouteCache((event) => this.#emit(event));
    this.#firstSync = new Promise((resolve) => (this.#firstSyncDone = resolve));
  }

  /** Connects and subscribes; resolves after the first resync, or after `timeoutMs` (still trying). */
  async start(timeoutMs = 5_000): Promise<void> {
    const { command, subscriber } = this.#connections;
    command.on('ready', () => this.#onCommandState(true));
    command.on('close', () => this.#onCommandState(false));
    command.on('end', () => this.#onCommandState(false));
    command.on('error', (err: unknown) => this.#onConnectionError('command', err));
    // Sentinel mode: why a Sentinel gave no primary (refused us, does not know the master name).
    command.on('sentinelError', (err: unknown) => this.#onConnectionError('command', err));
    // Redis Cluster: a node left the slot map (a master failed over). Its replica may lack the last
    // writes, so every pod re-reads the routes and puts its own lost registrations back.
    if (this.#connections.isCluster) command.on('-node', () => this.#onClusterNodeLost());
    subscriber.on('ready', () => void this.#onSubscriberReady());
    subscriber.on('close', () => this.#onSubscriptionDown());
    subscriber.on('end', () => this.#onSubscriptionDown());
    subscriber.on('error', (err: unknown) => this.#onConnectionError('subscriber', err));
    subscriber.on('sentinelError', (err: unknown) => this.#onConnectionError('subscriber', err));
    subscriber.on('message', (_channel: string, message: string) => this.#onMessage(message));
    void connectRedis(command);
    void connectRedis(subscriber);
    this.#maintenance = setInterval(() => void this.#maintain(), MAINTENANCE_INTERVAL_MS);
    this.#maintenance.unref();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#firstSync, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  get epoch(): string | undefined {
    return this.#epoch;
  }

  get keys(): RedisKeys {
    return this.#keys;
  }

  get connections(): RedisConnections {
    return this.#connections;
  }

  /** Why the registry is not healthy, or undefined when it is. */
  unhealthyReason(): string | undefined {
    const because = (error: string | undefined): string => (error === undefined ? '' : `: ${error}`);
    if (!this.#commandUp) return `redis unreachable${because(this.#connectionErrors.command)}`;
    if (!this.#subscriptionUp)
      return `peer event subscription down${because(this.#connectionErrors.subscriber)}`;
    if (!this.#synced) return 'resynchronising with redis';
    return undefined;
  }

  isHealthy(): boolean {
    return this.#commandUp && this.#subscriptionUp && this.#synced;
  }

  async register(peer: PeerKey): Promise<Registration> {
    const epoch = this.#epoch;
    if (!this.#commandUp || epoch === undefined) {
      throw new RegistryUnavailableError(this.unhealthyReason() ?? 'redis unreachable');
    }
    const printed = printedPeer(peer);
    const started = performance.now();
    this.#beginOp(peer);
    try {
      // Index first: if we die right after the script, the reaper still finds the session.
      await this.#connections.command.sadd(this.#keys.instanceSessions(this.instanceId), printed);
      const [tokenText, previous] = (await scripts.register.run(
        this.#connections.command,
        [this.#keys.route(printed), this.#keys.tokenFloor(printed)],
        [this.instanceId, printed, epoch, this.#tokenFloorTtl, this.#keys.events],
      )) as [string, string | null];
      const token = Number(tokenText);
      const registration = { peer, token };
      this.#local.set(peer, { registration, session: token });
      this.#metrics.localPeers.set(this.#local.size);
      // Apply our own result at once (the pub/sub copy arrives later and is a duplicate).
      if (previous) this.#applyStored(peer, previous, epoch, 'offline');
      this.#countOutcome(this.#routes.applyOnline(peer, this.instanceId, token, token, epoch));
      this.#observe('register', 'ok', started);
      return registration;
    } catch (err) {
      // The script may have run before the connection failed: check later.
      this.#suspects.add(peer);
      this.#observe('register', 'error', started);
      throw err instanceof RegistryUnavailableError ? err : new RegistryUnavailableError(String(err));
    } finally {
      this.#endOp(peer);
    }
  }

  async unregister(registration: Registration): Promise<boolean> {
    const { peer, token } = registration;
    const local = this.#local.get(peer);
    if (local?.registration === registration) {
      this.#local.delete(peer);
      this.#metrics.localPeers.set(this.#local.size);
    }
    const started = performance.now();
    this.#beginOp(peer);
    try {
      const removed = await this.#compareAndDelete(peer, token);
      this.#observe('unregister', removed ? 'ok' : 'stale', started);
      return removed;
    } catch (err) {
      this.#observe('unregister', 'error', started);
      this.#logger.warn(
        { peer_id: formatPeerKey(peer), err: String(err) },
        'unregister deferred until redis is back',
      );
      let tokens = this.#pendingUnregisters.get(peer);
      if (!tokens) this.#pendingUnregisters.set(peer, (tokens = new Set()));
      tokens.add(token);
      return false;
    } finally {
      this.#endOp(peer);
    }
  }

  locate(peer: PeerKey): PeerLocation | undefined {
    const route = this.#routes.get(peer);
    if (route === undefined) this.#lookupInBackground(peer);
    return route;
  }

  async lookup(peer: PeerKey): Promise<PeerLocation | undefined> {
    const started = performance.now();
    const value = await this.#connections.command.get(this.#keys.route(printedPeer(peer)));
    this.#observe('lookup', 'ok', started);
    const stored = value === null ? undefined : decodeStoredRoute(value);
    return stored && { instance: stored.instance, token: stored.token };
  }

  onEvent(listener: PeerEventListener): () => void {
    return this.#fanout.add(listener);
  }

  /**
   * The mesh was told "not here" by `instance` for `peer`: our route may be
   * stale (a missed event). Ask Redis and apply the answer through the event
   * stream, so subscribers stay consistent with the route cache.
   */
  verifyRoute(peer: PeerKey, instance: string): void {
    const route = this.#routes.get(peer);
    if (route?.instance !== instance || this.#lookups.has(peer) || !this.#commandUp) return;
    this.#lookups.add(peer);
    this.#connections.command
      .get(this.#keys.route(printedPeer(peer)))
      .then((value) => {
        const epoch = this.#epoch;
        if (epoch === undefined) return;
        const stored = value === null ? undefined : decodeStoredRoute(value);
        if (stored) this.#countOutcome(this.#applyRoute(peer, stored, epoch));
        else this.#countOutcome(this.#routes.applyOffline(peer, route.token, epoch));
      })
      .catch(() => {})
      .finally(() => this.#lookups.delete(peer));
  }

  /**
   * Called by the membership heartbeat with what it read from Redis. A new
   * epoch means the data set was lost; a lost membership means another pod
   * reaped us (we stalled): either way our sessions must be restored.
   */
  noteHeartbeat(epoch: string, membershipLost: boolean): void {
    if (this.#epoch !== undefined && epoch !== this.#epoch) {
      this.#requestResync('epoch_changed');
    } else if (membershipLost && Date.now() - this.#epochChangedAt > this.#restoreGraceMs) {
      this.#logger.warn('this instance was reaped while alive; restoring its sessions');
      this.#restoreNeeded = true;
      this.#requestResync('instance_reaped');
    }
  }

  /** Peers registered by this instance (the reaper of a restarted pod uses the Redis index instead). */
  get localSessionCount(): number {
    return this.#local.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#maintenance);
    clearTimeout(this.#absentTimer);
    this.#onCommandState(false);
    this.#onSubscriptionDown();
    const { command, subscriber } = this.#connections;
    await Promise.allSettled([command.quit(), subscriber.quit()]);
    command.disconnect();
    subscriber.disconnect();
  }

  // ---- events -------------------------------------------------------------

  #emit(event: PeerEvent): void {
    const local = this.#local.get(event.peer);
    if (
      event.kind === 'offline' &&
      local?.registration.token === event.token &&
      event.instance === this.instanceId
    ) {
      // Someone removed our registration (we were reaped while alive): the relay ends that
      // session, so it is no longer ours to restore.
      this.#local.delete(event.peer);
      this.#metrics.localPeers.set(this.#local.size);
    }
    if (event.kind === 'online') {
      // A newer session elsewhere replaced one of ours: the relay closes it quietly
      // (it listens to the same event); we stop counting it as ours.
      if (local && local.registration.token < event.token && event.instance !== this.instanceId) {
        this.#local.delete(event.peer);
        this.#metrics.localPeers.set(this.#local.size);
        if (!this.#inflight.has(event.peer)) this.#dropFromIndex(event.peer);
      }
    }
    this.#metrics.routes.set(this.#routes.size);
    this.#fanout.emit(event);
  }

  #onMessage(message: string): void {
    const event = decodeRedisPeerEvent(message);
    if (!event) {
      this.#logger.warn('ignoring malformed peer event');
      return;
    }
    this.#metrics.eventLagSeconds.observe(Math.max(0, Date.now() - event.publishedAt) / 1000);
    if (this.#epoch !== undefined && event.epoch !== this.#epoch) this.#checkEpoch();
    const outcome =
      event.kind === 'online'
        ? this.#routes.applyOnline(event.peer, event.instance, event.token, event.session, event.epoch)
        : this.#routes.applyOffline(event.peer, event.token, event.epoch);
    this.#countOutcome(outcome);
    if (this.#logger.isLevelEnabled('trace')) {
      this.#logger.trace({ peer_id: formatPeerKey(event.peer), event: message, outcome }, 'peer event');
    }
  }

  #countOutcome(outcome: ApplyOutcome): void {
    if (outcome === 'stale') this.#metrics.staleEventsDropped.inc();
  }

  #applyRoute(peer: PeerKey, stored: StoredRoute, epoch: string, authoritative = false): ApplyOutcome {
    return this.#routes.applyOnline(
      peer,
      stored.instance,
      stored.token,
      stored.session,
      epoch,
      authoritative,
    );
  }

  /** Applies a stored value "token|instance|session" returned by a script. */
  #applyStored(peer: PeerKey, value: string, epoch: string, kind: 'online' | 'offline'): void {
    const stored = decodeStoredRoute(value);
    if (!stored) return;
    this.#countOutcome(
      kind === 'online'
        ? this.#applyRoute(peer, stored, epoch)
        : this.#routes.applyOffline(peer, stored.token, epoch),
    );
  }

  // ---- connection state and resync -----------------------------------------

  /**
   * A connection attempt or a live connection failed. The client retries by itself; the reason is
   * kept for unhealthyReason() and logged once per distinct failure. The error object is not
   * logged: ioredis attaches the failed command with its arguments (AUTH carries the password).
   */
  #onConnectionError(connection: 'command' | 'subscriber', err: unknown): void {
    const reason = describeRedisError(err);
    const logged = this.#loggedErrors[connection];
    // ioredis reports "All sentinels are unreachable." without a cause when it merely ran out of
    // Sentinels to try after the primary failed: keep the cause we already know.
    const vague = reason === ALL_SENTINELS_TRIED && this.#connectionErrors[connection] !== undefined;
    if (!vague) this.#connectionErrors[connection] = reason;
    if (this.#closed) return;
    if (vague || logged.has(reason)) {
      this.#logger.debug({ connection, reason }, 'redis connection error');
      return;
    }
    if (logged.size >= 16) logged.clear();
    logged.add(reason);
    this.#logger.warn({ connection, reason }, 'redis connection failed; retrying');
  }

  /**
   * How long routes of other instances missing from Redis wait for their owners to put them back
   * before they count as offline; 0 when no data loss is suspected.
   */
  #restoreWindowMs(): number {
    const now = Date.now();
    if (now - this.#epochChangedAt < this.#restoreGraceMs) return this.#restoreGraceMs;
    const afterFailoverMs = Math.max(this.#restoreGraceMs, FAILOVER_RESTORE_WINDOW_MS);
    if (now - this.#possibleLossAt < afterFailoverMs) return afterFailoverMs;
    return 0;
  }

  #onClusterNodeLost(): void {
    if (this.#closed) return;
    this.#possibleLossAt = Date.now();
    this.#requestResync('cluster_node_lost');
  }

  #onCommandState(up: boolean): void {
    if (up === this.#commandUp) return;
    this.#commandUp = up;
    this.#metrics.redisUp.set(up ? 1 : 0);
    if (up) {
      delete this.#connectionErrors.command;
      this.#loggedErrors.command.clear();
      this.#logger.info('redis command connection ready');
      // Commands may have been lost with the old connection: reconcile.
      this.#requestResync('redis_reconnect');
    } else {
      this.#synced = false;
      if (!this.#closed) this.#logger.warn('redis command connection lost');
    }
  }

  async #onSubscriberReady(): Promise<void> {
    try {
      // Subscribing ourselves (idempotent) tells us when the subscription is really active.
      await this.#connections.subscriber.subscribe(this.#keys.events);
    } catch (err) {
      this.#logger.warn({ err: String(err) }, 'subscribing to peer events failed');
      return;
    }
    this.#subscriptionUp = true;
    delete this.#connectionErrors.subscriber;
    this.#loggedErrors.subscriber.clear();
    this.#metrics.subscriptionUp.set(1);
    this.#requestResync('subscription_reconnect');
  }

  #onSubscriptionDown(): void {
    if (!this.#subscriptionUp) return;
    this.#subscriptionUp = false;
    this.#synced = false;
    this.#metrics.subscriptionUp.set(0);
    if (!this.#closed) this.#logger.warn('peer event subscription lost');
  }

  #requestResync(reason: string): void {
    if (this.#closed) return;
    this.#synced = false;
    this.#resyncReasons.add(reason);
    if (!this.#resyncRunning) void this.#runResyncs();
  }

  async #runResyncs(): Promise<void> {
    this.#resyncRunning = true;
    try {
      while (this.#resyncReasons.size > 0 && !this.#closed) {
        // Without both connections a resync cannot complete; their 'ready' asks again.
        if (!this.#commandUp || !this.#subscriptionUp) return;
        const reasons = [...this.#resyncReasons];
        this.#resyncReasons.clear();
        try {
          await this.#resync(reasons);
        } catch (err) {
          this.#logger.warn({ err: String(err), reasons }, 'resync failed; retrying');
          for (const reason of reasons) this.#resyncReasons.add(reason);
          await delay(200);
        }
      }
      if (this.#commandUp && this.#subscriptionUp && !this.#closed) {
        this.#synced = true;
        this.#firstSyncDone();
      }
    } finally {
      this.#resyncRunning = false;
    }
  }

  async #resync(reasons: string[]): Promise<void> {
    const started = performance.now();
    const { command } = this.#connections;
    const [epoch] = (await scripts.epoch.run(command, [this.#keys.epoch], [randomUUID()])) as [
      string,
      number,
    ];
    // Remembered until a resync completes: a resync that fails half-way must not forget it.
    if (this.#epoch !== undefined && epoch !== this.#epoch) {
      this.#epochChangePending = true;
      this.#epochChangedAt = Date.now();
    }
    const epochChanged = this.#epochChangePending;
    // Other pods may still be restoring for a while after data loss: absences are not final yet.
    const restoreWindowMs = this.#restoreWindowMs();
    const restoring = restoreWindowMs > 0;
    const firstSync = this.#epoch === undefined;
    this.#epoch = epoch;
    for (const reason of reasons)
      this.#metrics.resyncs.inc({ reason: epochChanged ? 'epoch_changed' : reason });
    if (epochChanged) {
      this.#logger.warn(
        { sessions: this.#local.size },
        'redis lost its data (new epoch); restoring sessions',
      );
      this.#routes.forgetTombstones();
    }
    if (epochChanged || this.#restoreNeeded) {
      this.#restoreNeeded = false;
      await this.#restoreAll(epoch);
    }
    const scanStart = this.#routes.appliedCount;
    const stored = await this.#scanRoutes();

    // Our own sessions first, so a lost registration is put back rather than announced offline.
    const toRestore: LocalSession[] = [];
    for (const [peer, local] of this.#local) {
      if (this.#inflight.has(peer)) continue;
      const route = stored.get(peer);
      if (!route || route.token < local.registration.token) toRestore.push(local);
    }
    await forEachConcurrently(toRestore, RESTORE_CONCURRENCY, (local) => this.#restore(local, epoch));
    const restored = new Set(toRestore.map((local) => local.registration.peer));

    // Offline before online: sessions we knew that Redis no longer has (and that no
    // event or restore touched since the scan began), then what we missed.
    for (const [peer, route] of this.#routes.entries()) {
      if (stored.has(peer) || restored.has(peer) || route.appliedAt > scanStart) continue;
      if (restoring && route.instance !== this.instanceId) {
        // After data loss the other pods are putting their sessions back right now:
        // only what is still missing after a grace period went offline.
        this.#absent.set(peer, route.token);
      } else {
        this.#countOutcome(this.#routes.applyOffline(peer, route.token, epoch));
      }
    }
    if (this.#absent.size > 0 && !this.#absentTimer) {
      this.#absentTimer = setTimeout(
        () => void this.#confirmAbsent(),
        restoreWindowMs || this.#restoreGraceMs,
      );
      this.#absentTimer.unref();
    }
    for (const [peer, route] of stored) {
      if (restored.has(peer)) continue;
      this.#countOutcome(this.#applyRoute(peer, route, epoch, epochChanged));
    }

    // Registrations of ours that no local session holds (a register whose reply was lost).
    const orphans: [PeerKey, number][] = [];
    for (const [peer, route] of stored) {
      if (route.instance !== this.instanceId || this.#inflight.has(peer)) continue;
      if (this.#local.get(peer)?.registration.token !== route.token) orphans.push([peer, route.token]);
    }
    await forEachConcurrently(orphans, RESTORE_CONCURRENCY, async ([peer, token]) => {
      if (await this.#compareAndDelete(peer, token)) this.#metrics.orphansRemoved.inc();
    });
    this.#metrics.routes.set(this.#routes.size);
    this.#epochChangePending = false;
    if (!firstSync || epochChanged) {
      this.#logger.info(
        { reasons, routes: this.#routes.size, restored: toRestore.length, orphans: orphans.length },
        'resynchronised with redis',
      );
    }
    this.#observe('resync', 'ok', started);
  }

  async #scanRoutes(): Promise<Map<PeerKey, StoredRoute>> {
    const result = new Map<PeerKey, StoredRoute>();
    for (const node of this.#connections.scanTargets()) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', this.#keys.routePattern, 'COUNT', SCAN_BATCH);
        cursor = next;
        if (keys.length === 0) continue;
        const pipeline = node.pipeline();
        for (const key of keys) pipeline.get(key);
        const values = (await pipeline.exec()) ?? [];
        keys.forEach((key, index) => {
          const peer = this.#keys.peerOfRouteKey(key);
          const value = values[index]?.[1];
          const stored = typeof value === 'string' ? decodeStoredRoute(value) : undefined;
          if (peer !== undefined && stored) result.set(peer, stored);
        });
      } while (cursor !== '0');
    }
    return result;
  }

  async #restoreAll(epoch: string): Promise<void> {
    const sessions = [...this.#local.values()].filter(
      (local) => !this.#inflight.has(local.registration.peer),
    );
    await forEachConcurrently(sessions, RESTORE_CONCURRENCY, (local) => this.#restore(local, epoch));
  }

  /** Registers a session of ours again without overriding a newer one. */
  async #restore(local: LocalSession, epoch: string): Promise<void> {
    const { registration } = local;
    const peer = registration.peer;
    const printed = printedPeer(peer);
    this.#beginOp(peer);
    try {
      await this.#connections.command.sadd(this.#keys.instanceSessions(this.instanceId), printed);
      const [tokenText, previous] = (await scripts.restore.run(
        this.#connections.command,
        [this.#keys.route(printed), this.#keys.tokenFloor(printed)],
        [
          this.instanceId,
          printed,
          epoch,
          this.#tokenFloorTtl,
          this.#keys.events,
          registration.token,
          local.session,
        ],
      )) as [string | null, string | null];
      if (tokenText === null) {
        // A newer session exists: announce it (the relay closes ours).
        if (previous) this.#applyStored(peer, previous, epoch, 'online');
        return;
      }
      const token = Number(tokenText);
      if (token === registration.token) return;
      registration.token = token;
      this.#metrics.restoredSessions.inc();
      if (previous) this.#applyStored(peer, previous, epoch, 'offline');
      this.#countOutcome(this.#routes.applyOnline(peer, this.instanceId, token, local.session, epoch, true));
      // Unregistered while we restored: the unregister used the old token.
      if (this.#local.get(peer) !== local) await this.#compareAndDelete(peer, token);
    } catch (err) {
      // A resync running meanwhile skipped this peer (in flight): make sure another one follows.
      this.#requestResync('restore_failed');
      throw err;
    } finally {
      this.#endOp(peer);
    }
  }

  /** Runs the compare-and-delete script; applies and de-indexes on success. */
  async #compareAndDelete(peer: PeerKey, token: number): Promise<boolean> {
    const epoch = this.#epoch ?? '';
    const printed = printedPeer(peer);
    const removed = await scripts.compareAndDelete.run(
      this.#connections.command,
      [this.#keys.route(printed)],
      ['token', String(token), printed, epoch, this.#keys.events],
    );
    if (removed !== 1) {
      this.#metrics.staleCleanupsIgnored.inc();
      return false;
    }
    this.#countOutcome(this.#routes.applyOffline(peer, token, epoch));
    if (!this.#local.has(peer)) this.#dropFromIndex(peer);
    return true;
  }

  #dropFromIndex(peer: PeerKey): void {
    this.#connections.command
      .srem(this.#keys.instanceSessions(this.instanceId), printedPeer(peer))
      .catch(() => {});
  }

  /** A peer event whose epoch differs from ours: is ours outdated? Checked once at a time. */
  #checkEpoch(): void {
    if (this.#epochCheckRunning || !this.#commandUp) return;
    this.#epochCheckRunning = true;
    this.#connections.command
      .get(this.#keys.epoch)
      .then((epoch) => {
        if (epoch !== this.#epoch) this.#requestResync('epoch_changed');
      })
      .catch(() => {})
      .finally(() => (this.#epochCheckRunning = false));
  }

  // ---- background work ----------------------------------------------------

  async #confirmAbsent(): Promise<void> {
    this.#absentTimer = undefined;
    const epoch = this.#epoch;
    if (epoch === undefined) return;
    const suspects = [...this.#absent];
    this.#absent.clear();
    await forEachConcurrently(suspects, RESTORE_CONCURRENCY, async ([peer, token]) => {
      if (this.#routes.get(peer)?.token !== token) return; // an event settled it meanwhile
      try {
        const value = await this.#connections.command.get(this.#keys.route(printedPeer(peer)));
        const stored = value === null ? undefined : decodeStoredRoute(value);
        if (this.#routes.get(peer)?.token !== token) return;
        if (stored) this.#countOutcome(this.#applyRoute(peer, stored, epoch, true));
        else this.#countOutcome(this.#routes.applyOffline(peer, token, epoch));
      } catch {
        // Redis went away again: the next resync starts over.
      }
    });
  }

  #lookupInBackground(peer: PeerKey): void {
    if (!this.#commandUp || this.#lookups.has(peer) || this.#lookups.size >= MAX_BACKGROUND_LOOKUPS) return;
    const until = this.#negative.get(peer);
    if (until !== undefined && until > Date.now()) return;
    this.#lookups.add(peer);
    this.#connections.command
      .get(this.#keys.route(printedPeer(peer)))
      .then((value) => {
        const stored = value === null ? undefined : decodeStoredRoute(value);
        const epoch = this.#epoch;
        if (stored && epoch !== undefined) {
          this.#negative.delete(peer);
          this.#countOutcome(this.#applyRoute(peer, stored, epoch));
        } else {
          if (this.#negative.size >= MAX_NEGATIVE_ENTRIES) this.#negative.clear();
          this.#negative.set(peer, Date.now() + this.#negativeTtlMs);
        }
      })
      .catch(() => {})
      .finally(() => this.#lookups.delete(peer));
  }

  async #maintain(): Promise<void> {
    const now = Date.now();
    this.#routes.purgeExpiredTombstones(now);
    for (const [peer, until] of this.#negative) if (until <= now) this.#negative.delete(peer);
    if (!this.#commandUp || this.#epoch === undefined) return;
    for (const [peer, tokens] of this.#pendingUnregisters) {
      if (this.#inflight.has(peer)) continue;
      try {
        for (const token of tokens) {
          await this.#compareAndDelete(peer, token);
          tokens.delete(token);
        }
        this.#pendingUnregisters.delete(peer);
      } catch {
        return;
      }
    }
    for (const peer of this.#suspects) {
      if (this.#inflight.has(peer)) continue;
      try {
        const value = await this.#connections.command.get(this.#keys.route(printedPeer(peer)));
        const stored = value === null ? undefined : decodeStoredRoute(value);
        const ours = this.#local.get(peer)?.registration.token;
        if (stored?.instance === this.instanceId && stored.token !== ours && !this.#inflight.has(peer)) {
          if (await this.#compareAndDelete(peer, stored.token)) this.#metrics.orphansRemoved.inc();
        }
        this.#suspects.delete(peer);
      } catch {
        return;
      }
    }
  }

  #beginOp(peer: PeerKey): void {
    this.#inflight.set(peer, (this.#inflight.get(peer) ?? 0) + 1);
  }

  #endOp(peer: PeerKey): void {
    const count = (this.#inflight.get(peer) ?? 1) - 1;
    if (count === 0) this.#inflight.delete(peer);
    else this.#inflight.set(peer, count);
  }

  #observe(operation: string, outcome: string, started: number): void {
    this.#metrics.operationSeconds.observe({ operation, outcome }, (performance.now() - started) / 1000);
  }
}

const ALL_SENTINELS_TRIED = 'All sentinels are unreachable.';
const AUTH_FAILURE = /WRONGPASS|NOAUTH|invalid password|invalid username-password/i;

/**
 * After a Redis Cluster failover an owner notices at its next slot-map refresh, and its resync
 * fails until every client has the new map (seconds of redirections): its lost registrations come
 * back only then. Other pods wait this long before a missing route counts as offline, so a
 * failover is not announced as peers going offline.
 */
const FAILOVER_RESTORE_WINDOW_MS = 15_000 + CLUSTER_SLOTS_REFRESH_MS;

/**
 * One line on why a Redis connection failed, from the error message alone (a Redis Cluster's
 * "failed to refresh slots" carries the node's error inside). Authentication failures say so and
 * name the settings to check.
 */
export function describeRedisError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const lastNodeError = (err as { lastNodeError?: unknown }).lastNodeError;
  let text = err.message.replace(/ Retrying from scratch after \d+ms\./, '');
  if (lastNodeError instanceof Error) text += ` (last node error: ${lastNodeError.message})`;
  if (!AUTH_FAILURE.test(text)) return text;
  const settings = /sentinel/i.test(text)
    ? 'NB_REDIS_SENTINEL_PASSWORD'
    : 'NB_REDIS_USERNAME / NB_REDIS_PASSWORD (or the credentials in NB_REDIS_URL)';
  return `authentication failed (${text}); check ${settings}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await run(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

import { randomUUID } from 'node:crypto';
import type { PeerKey } from '../protocol/peer-id.js';
import { forEachConcurrently } from './for-each-concurrently.js';
import type { LocalSession } from './local-sessions.js';
import type { RegistryState } from './redis-registry-state.js';
import type { StoredRoute } from './redis/route-codec.js';
import { CLUSTER_SLOTS_REFRESH_MS } from './redis/connections.js';

/**
 * After a Redis Cluster failover an owner notices at its next slot-map refresh, and its resync
 * fails until every client has the new map (seconds of redirections): its lost registrations come
 * back only then. Other pods wait this long before a missing route counts as offline, so a
 * failover is not announced as peers going offline.
 */
const FAILOVER_RESTORE_WINDOW_MS = 15_000 + CLUSTER_SLOTS_REFRESH_MS;
const RESTORE_CONCURRENCY = 64;
const RETRY_DELAY_MS = 200;

export interface ResyncOptions {
  state: RegistryState;
  /** Both connections up: a resync cannot complete otherwise (their 'ready' asks again). */
  connected: () => boolean;
  /** Life of a hash slot's token floor after the last registration in the slot. */
  tokenFloorTtlSeconds: number;
  /** After data loss, time the other pods get to restore their sessions before we call them gone. */
  restoreGraceMs: number;
}

/**
 * Brings the route cache back in line with Redis after anything that may have lost events or
 * data: reload, diff, emit the differences through the route cache; put back the sessions of
 * ours that Redis lost (epoch change, failover, being reaped while alive); remove registrations
 * of ours that no session holds. Until a resync finished the registry is not synced.
 */
export class Resync {
  readonly #state: RegistryState;
  readonly #connected: () => boolean;
  readonly #tokenFloorTtl: number;
  readonly #restoreGraceMs: number;
  /** Routes missing after data loss, confirmed gone (or not) after the restore grace period. */
  readonly #absent = new Map<PeerKey, number>();
  #absentTimer: NodeJS.Timeout | undefined;
  #epochChangePending = false;
  #epochChangedAt = -Infinity;
  /** When Redis may have lost part of its data (a Redis Cluster failover), as for an epoch change. */
  #possibleLossAt = -Infinity;
  #synced = false;
  #running = false;
  readonly #reasons = new Set<string>();
  #restoreNeeded = false;
  #epochCheckRunning = false;
  #closed = false;
  readonly #firstSync: Promise<void>;
  #firstSyncDone!: () => void;

  constructor(options: ResyncOptions) {
    this.#state = options.state;
    this.#connected = options.connected;
    this.#tokenFloorTtl = options.tokenFloorTtlSeconds;
    this.#restoreGraceMs = options.restoreGraceMs;
    this.#firstSync = new Promise((resolve) => (this.#firstSyncDone = resolve));
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves when the first resync completed. */
  get firstSync(): Promise<void> {
    return this.#firstSync;
  }

  /** A connection went down: events may be missed from now on. */
  markUnsynced(): void {
    this.#synced = false;
  }

  request(reason: string): void {
    if (this.#closed) return;
    this.#synced = false;
    this.#reasons.add(reason);
    if (!this.#running) void this.#runAll();
  }

  /**
   * What the membership heartbeat read from Redis. A new epoch means the data set was lost; a lost
   * membership means another pod reaped us (we stalled): either way our sessions must be restored.
   */
  noteHeartbeat(epoch: string, { membershipLost }: { membershipLost: boolean }): void {
    const known = this.#state.epoch;
    if (known !== undefined && epoch !== known) {
      this.request('epoch_changed');
    } else if (membershipLost && Date.now() - this.#epochChangedAt > this.#restoreGraceMs) {
      this.#state.logger.warn('this instance was reaped while alive; restoring its sessions');
      this.#restoreNeeded = true;
      this.request('instance_reaped');
    }
  }

  /** Redis Cluster: a master failed over, its replica may lack the last writes. */
  noteClusterNodeLost(): void {
    if (this.#closed) return;
    this.#possibleLossAt = Date.now();
    this.request('cluster_node_lost');
  }

  /** A peer event carried another epoch than ours: is ours outdated? Checked once at a time. */
  checkEpoch(): void {
    if (this.#epochCheckRunning || !this.#connected()) return;
    this.#epochCheckRunning = true;
    this.#state.store
      .readEpoch()
      .then((epoch) => {
        if (epoch !== this.#state.epoch) this.request('epoch_changed');
      })
      .catch(() => {})
      .finally(() => (this.#epochCheckRunning = false));
  }

  close(): void {
    this.#closed = true;
    this.#synced = false;
    clearTimeout(this.#absentTimer);
  }

  async #runAll(): Promise<void> {
    this.#running = true;
    try {
      while (this.#reasons.size > 0 && !this.#closed) {
        if (!this.#connected()) return;
        const reasons = [...this.#reasons];
        this.#reasons.clear();
        try {
          await this.#resync(reasons);
        } catch (err) {
          this.#state.logger.warn({ err, reasons }, 'resync failed; retrying');
          for (const reason of reasons) this.#reasons.add(reason);
          await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
        }
      }
      if (this.#connected() && !this.#closed) {
        this.#synced = true;
        this.#firstSyncDone();
      }
    } finally {
      this.#running = false;
    }
  }

  async #resync(reasons: string[]): Promise<void> {
    const started = performance.now();
    const state = this.#state;
    const { routes, sessions, metrics, instanceId } = state;
    const epoch = await state.store.ensureEpoch(randomUUID());
    // Remembered until a resync completes: a resync that fails half-way must not forget it.
    if (state.epoch !== undefined && epoch !== state.epoch) {
      this.#epochChangePending = true;
      this.#epochChangedAt = Date.now();
    }
    const epochChanged = this.#epochChangePending;
    // Other pods may still be restoring for a while after data loss: absences are not final yet.
    const restoreWindowMs = this.#restoreWindowMs();
    const restoring = restoreWindowMs > 0;
    const firstSync = state.epoch === undefined;
    state.epoch = epoch;
    for (const reason of reasons) metrics.resyncs.inc({ reason: epochChanged ? 'epoch_changed' : reason });
    if (epochChanged) {
      state.logger.warn({ sessions: sessions.size }, 'redis lost its data (new epoch); restoring sessions');
      routes.forgetTombstones();
    }
    if (epochChanged || this.#restoreNeeded) {
      this.#restoreNeeded = false;
      await forEachConcurrently(sessions.settled(), RESTORE_CONCURRENCY, (local) =>
        this.#restore(local, epoch),
      );
    }
    const scanStart = routes.appliedCount;
    const stored = await state.store.scanRoutes();

    // Our own sessions first, so a lost registration is put back rather than announced offline.
    const toRestore: LocalSession[] = [];
    for (const [peer, local] of sessions.entries()) {
      if (sessions.inFlight(peer)) continue;
      const route = stored.get(peer);
      if (!route || route.token < local.registration.token) toRestore.push(local);
      else if (isOurs(route, instanceId, local) && route.token > local.registration.token) {
        // A restore of ours ran but its reply was lost (timeout, connection closed): the route is
        // this session's. Taking its token keeps it from looking like an orphan below.
        local.registration.token = route.token;
        metrics.restoredSessions.inc();
      }
    }
    await forEachConcurrently(toRestore, RESTORE_CONCURRENCY, (local) => this.#restore(local, epoch));
    const restored = new Set(toRestore.map((local) => local.registration.peer));

    // Offline before online: sessions we knew that Redis no longer has (and that no
    // event or restore touched since the scan began), then what we missed.
    for (const [peer, route] of routes.entries()) {
      if (stored.has(peer) || restored.has(peer) || route.appliedAt > scanStart) continue;
      // An operation of ours on this peer is still out (a register, a restore): its outcome
      // settles the route, not this scan. Announced offline, a session of ours is forgotten for
      // good (RedisRegistry.#emit drops it), so it would never be restored.
      if (sessions.inFlight(peer)) continue;
      if (restoring && route.instance !== instanceId) {
        // After data loss the other pods are putting their sessions back right now:
        // only what is still missing after a grace period went offline.
        this.#absent.set(peer, route.token);
      } else {
        state.applyOffline(peer, route.token, epoch);
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
      if (!restored.has(peer)) state.applyRoute(peer, route, epoch, { authoritative: epochChanged });
    }

    // Registrations of ours that no local session holds (a register whose reply was lost).
    const orphans: [PeerKey, number][] = [];
    for (const [peer, route] of stored) {
      if (route.instance !== instanceId || sessions.inFlight(peer)) continue;
      if (sessions.tokenOf(peer) !== route.token) orphans.push([peer, route.token]);
    }
    await forEachConcurrently(orphans, RESTORE_CONCURRENCY, async ([peer, token]) => {
      if (await state.compareAndDelete(peer, token)) metrics.orphansRemoved.inc();
    });
    metrics.routes.set(routes.size);
    this.#epochChangePending = false;
    if (!firstSync || epochChanged) {
      state.logger.info(
        { reasons, routes: routes.size, restored: toRestore.length, orphans: orphans.length },
        'resynchronised with redis',
      );
    }
    state.observe('resync', 'ok', started);
  }

  /** Registers a session of ours again without overriding a newer one. */
  async #restore(local: LocalSession, epoch: string): Promise<void> {
    const state = this.#state;
    const { registration } = local;
    const peer = registration.peer;
    await state.sessions.during(peer, async () => {
      try {
        await state.store.indexSession(state.instanceId, peer);
        const result = await state.store.restore(
          peer,
          { instance: state.instanceId, token: registration.token, session: local.session },
          epoch,
          this.#tokenFloorTtl,
        );
        if (result.kind === 'superseded') {
          // A newer session exists: announce it (the relay closes ours).
          if (result.current) state.applyRoute(peer, result.current, epoch);
          return;
        }
        const { token, previous } = result;
        if (token === registration.token) return;
        registration.token = token;
        state.metrics.restoredSessions.inc();
        if (previous) state.applyOffline(peer, previous.token, epoch);
        state.count(
          state.routes.applyOnline(peer, state.instanceId, token, local.session, epoch, {
            authoritative: true,
          }),
        );
        // Unregistered while we restored: the unregister used the old token.
        if (state.sessions.get(peer) !== local) await state.compareAndDelete(peer, token);
      } catch (err) {
        // A resync running meanwhile skipped this peer (in flight): make sure another one follows.
        this.request('restore_failed');
        throw err;
      }
    });
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

  async #confirmAbsent(): Promise<void> {
    this.#absentTimer = undefined;
    const state = this.#state;
    const epoch = state.epoch;
    if (epoch === undefined) return;
    const absent = [...this.#absent];
    this.#absent.clear();
    await forEachConcurrently(absent, RESTORE_CONCURRENCY, async ([peer, token]) => {
      if (state.routes.get(peer)?.token !== token) return; // an event settled it meanwhile
      try {
        const stored = await state.store.readRoute(peer);
        if (state.routes.get(peer)?.token !== token) return;
        if (stored) state.applyRoute(peer, stored, epoch, { authoritative: true });
        else state.applyOffline(peer, token, epoch);
      } catch {
        // Redis went away again: the next resync starts over.
      }
    });
  }
}

/** Whether `route` is `local`'s session (the one a restore of ours writes back). */
function isOurs(route: StoredRoute, instanceId: string, local: LocalSession): boolean {
  return route.instance === instanceId && route.session === local.session;
}

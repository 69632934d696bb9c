import type { Logger } from 'pino';
import type { PeerKey } from '../protocol/peer-id.js';
import type { LocalSessions } from './local-sessions.js';
import type { RedisRegistryMetrics } from './redis-registry-metrics.js';
import type { ApplyOptions, ApplyOutcome, RouteCache } from './redis-route-cache.js';
import type { StoredRoute } from './redis/route-codec.js';
import type { RedisStore } from './redis/store.js';

/**
 * What the parts of the Redis registry share: this instance's sessions, the route cache and the
 * data set's epoch; and the writes that must keep Redis, the cache and the session index in step.
 */
export class RegistryState {
  readonly instanceId: string;
  readonly store: RedisStore;
  readonly routes: RouteCache;
  readonly sessions: LocalSessions;
  readonly metrics: RedisRegistryMetrics;
  readonly logger: Logger;
  /** Identity of the data set as of the last resync; undefined before the first. */
  epoch: string | undefined;

  constructor(options: {
    instanceId: string;
    store: RedisStore;
    routes: RouteCache;
    sessions: LocalSessions;
    metrics: RedisRegistryMetrics;
    logger: Logger;
  }) {
    this.instanceId = options.instanceId;
    this.store = options.store;
    this.routes = options.routes;
    this.sessions = options.sessions;
    this.metrics = options.metrics;
    this.logger = options.logger;
  }

  count(outcome: ApplyOutcome): void {
    if (outcome === 'stale') this.metrics.staleEventsDropped.inc();
  }

  applyRoute(peer: PeerKey, stored: StoredRoute, epoch: string, options: ApplyOptions = {}): void {
    this.count(this.routes.applyOnline(peer, stored.instance, stored.token, stored.session, epoch, options));
  }

  applyOffline(peer: PeerKey, token: number, epoch: string): void {
    this.count(this.routes.applyOffline(peer, token, epoch));
  }

  /** Compare-and-delete by token; applies the offline and de-indexes on success. */
  async compareAndDelete(peer: PeerKey, token: number): Promise<boolean> {
    const epoch = this.epoch ?? '';
    if (!(await this.store.deleteRouteIfToken(peer, token, epoch))) {
      this.metrics.staleCleanupsIgnored.inc();
      return false;
    }
    this.applyOffline(peer, token, epoch);
    if (!this.sessions.has(peer)) this.dropFromIndex(peer);
    return true;
  }

  /** Best effort: a stale index entry only costs the reaper one no-op compare-and-delete. */
  dropFromIndex(peer: PeerKey): void {
    this.store.unindexSession(this.instanceId, peer).catch(() => {});
  }

  observe(operation: string, outcome: string, started: number): void {
    this.metrics.operationSeconds.observe({ operation, outcome }, (performance.now() - started) / 1000);
  }
}

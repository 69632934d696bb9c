import type { Logger } from 'pino';
import type { RedisStore } from '../registry/redis/store.js';
import type { ClusterMetrics } from './cluster-metrics.js';

/** Long enough for one pod to walk a dead instance's sessions; short enough to retry soon if that pod dies. */
const REAP_LOCK_MS = 5_000;

/** What reaping needs of the Redis data. */
export type ReaperStore = Pick<RedisStore, 'lockReap' | 'deleteSessionsOf' | 'forgetMember'>;

export type ReapCause = 'expired' | 'predecessor' | 'pod_deleted' | 'shutdown';

/**
 * Removes the sessions of a dead instance: compare-and-delete of each entry
 * it still owns (publishing offline), then its membership. Idempotent, so any
 * pod may run it; a short lock keeps every pod from doing the same work.
 */
export class Reaper {
  readonly #store: ReaperStore;
  readonly #instanceId: string;
  readonly #expiryMs: number;
  readonly #logger: Logger;
  readonly #metrics: ClusterMetrics;
  readonly #running = new Set<string>();

  constructor(options: {
    store: ReaperStore;
    instanceId: string;
    expiryMs: number;
    logger: Logger;
    metrics: ClusterMetrics;
  }) {
    this.#store = options.store;
    this.#instanceId = options.instanceId;
    this.#expiryMs = options.expiryMs;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
  }

  /**
   * `cause` 'expired': heartbeat missing (removed from the member tables only if still stale);
   * 'predecessor': an earlier process of our pod name; 'pod_deleted': its pod is gone from the
   * Kubernetes API; 'shutdown': ourselves on a graceful close.
   * Returns the number of sessions removed, or undefined when another pod holds the lock.
   */
  async reap(instance: string, cause: ReapCause): Promise<number | undefined> {
    if (this.#running.has(instance)) return undefined;
    this.#running.add(instance);
    try {
      if (!(await this.#store.lockReap(instance, this.#instanceId, REAP_LOCK_MS))) return undefined;
      const removed = await this.#store.deleteSessionsOf(instance);
      const forgotten = await this.#store.forgetMember(instance, this.#expiryMs, {
        evenIfAlive: cause !== 'expired',
      });
      this.#metrics.reapedSessions.inc(removed);
      if (forgotten && cause !== 'shutdown') this.#metrics.reapedInstances.inc({ cause });
      if (cause !== 'shutdown')
        this.#logger.info({ dead_instance: instance, cause, sessions: removed }, 'reaped instance');
      return removed;
    } finally {
      this.#running.delete(instance);
    }
  }
}

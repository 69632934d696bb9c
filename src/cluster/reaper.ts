import type { Logger } from 'pino';
import type { RedisKeys } from '../registry/redis/keys.js';
import { scripts, type RedisClient } from '../registry/redis/script.js';
import type { ClusterMetrics } from './cluster-metrics.js';

const SCAN_BATCH = 500;
/** Long enough for one pod to walk a dead instance's sessions; short enough to retry soon if that pod dies. */
const REAP_LOCK_MS = 5_000;

export type ReapCause = 'expired' | 'predecessor' | 'pod_deleted' | 'shutdown';

/**
 * Removes the sessions of a dead instance: compare-and-delete of each entry
 * it still owns (publishing offline), then its membership. Idempotent, so any
 * pod may run it; a short lock keeps every pod from doing the same work.
 */
export class Reaper {
  readonly #redis: RedisClient;
  readonly #keys: RedisKeys;
  readonly #instanceId: string;
  readonly #expiryMs: number;
  readonly #logger: Logger;
  readonly #metrics: ClusterMetrics;
  readonly #running = new Set<string>();

  constructor(options: {
    redis: RedisClient;
    keys: RedisKeys;
    instanceId: string;
    expiryMs: number;
    logger: Logger;
    metrics: ClusterMetrics;
  }) {
    this.#redis = options.redis;
    this.#keys = options.keys;
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
      const lock = await this.#redis.set(
        this.#keys.reapLock(instance),
        this.#instanceId,
        'PX',
        REAP_LOCK_MS,
        'NX',
      );
      if (lock !== 'OK') return undefined;
      const epoch = (await this.#redis.get(this.#keys.epoch)) ?? '';
      const index = this.#keys.instanceSessions(instance);
      let removed = 0;
      let cursor = '0';
      do {
        const [next, peers] = await this.#redis.sscan(index, cursor, 'COUNT', SCAN_BATCH);
        cursor = next;
        const results = await Promise.all(
          peers.map((printed) =>
            scripts.compareAndDelete.run(
              this.#redis,
              [this.#keys.route(printed)],
              ['instance', instance, printed, epoch, this.#keys.events],
            ),
          ),
        );
        removed += results.filter((result) => result === 1).length;
      } while (cursor !== '0');
      const forgotten = await scripts.forgetMember.run(
        this.#redis,
        [this.#keys.members, this.#keys.memberInfo, this.#keys.pods],
        [instance, this.#expiryMs, cause === 'expired' ? '0' : '1'],
      );
      // A slow but living instance beat again: it restores its own index and sessions.
      if (forgotten === 1) await this.#redis.del(index);
      this.#metrics.reapedSessions.inc(removed);
      if (forgotten === 1 && cause !== 'shutdown') this.#metrics.reapedInstances.inc({ cause });
      if (cause !== 'shutdown')
        this.#logger.info({ dead_instance: instance, cause, sessions: removed }, 'reaped instance');
      return removed;
    } finally {
      this.#running.delete(instance);
    }
  }
}

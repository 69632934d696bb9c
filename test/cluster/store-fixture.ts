// One real redis-server and a RedisStore for the tests of the parts that take the narrow
// store (Membership, Reaper): flushed, with fresh metrics and a Reaper, before each test.
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { ClusterMetrics } from '../../src/cluster/cluster-metrics.js';
import { Reaper } from '../../src/cluster/reaper.js';
import { RedisKeys } from '../../src/registry/redis/keys.js';
import { RedisStore } from '../../src/registry/redis/store.js';
import { failFastClient } from '../registry/support/registry-parts.js';
import { RedisServer, stopAllRedis } from '../support/redis-server.js';
import { peer, silentLogger } from './cluster-test-kit.js';

export interface StoreFixture {
  /** The redis-server behind `store` (to pause it, or to open more connections to it). */
  server: RedisServer;
  store: RedisStore;
  metrics: Registry;
  clusterMetrics: ClusterMetrics;
  reaper: Reaper;
  /** An instance with a heartbeat (pod `podName`) and `count` registered, indexed sessions. */
  instanceWithSessions(instance: string, podName: string, count: number): Promise<void>;
}

export function useStoreFixture(): StoreFixture {
  let redis: Redis;
  const fixture = {
    async instanceWithSessions(instance: string, podName: string, count: number): Promise<void> {
      await fixture.store.heartbeat(instance, { meshAddress: '10.0.0.1:7946', podName }, 'E1');
      for (let i = 0; i < count; i++) {
        const p = peer(`${instance}-${i}`);
        await fixture.store.indexSession(instance, p);
        await fixture.store.register(p, instance, 'E1', 60);
      }
    },
  } as StoreFixture;

  beforeAll(async () => {
    fixture.server = await RedisServer.start();
    redis = await failFastClient(fixture.server.url);
    fixture.store = new RedisStore({ redis, keys: new RedisKeys('t') });
  });

  afterAll(async () => {
    redis?.disconnect();
    await stopAllRedis();
  });

  beforeEach(async () => {
    await redis.flushall();
    fixture.metrics = new Registry();
    fixture.clusterMetrics = new ClusterMetrics(fixture.metrics);
    fixture.reaper = new Reaper({
      store: fixture.store,
      instanceId: 'me',
      expiryMs: 10_000,
      logger: silentLogger,
      metrics: fixture.clusterMetrics,
    });
  });
  return fixture;
}

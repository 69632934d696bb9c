import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ClusterMetrics } from '../../src/cluster/cluster-metrics.js';
import { Reaper } from '../../src/cluster/reaper.js';
import { RedisKeys } from '../../src/registry/redis/keys.js';
import { RedisStore } from '../../src/registry/redis/store.js';
import { failFastClient } from '../registry/support/registry-parts.js';
import { RedisServer, stopAllRedis } from '../support/redis-server.js';
import { metricValue, peer, silentLogger } from './cluster-test-kit.js';

let server: RedisServer;
let redis: Redis;
let store: RedisStore;
let metrics: Registry;
let clusterMetrics: ClusterMetrics;
let reaper: Reaper;

beforeAll(async () => {
  server = await RedisServer.start();
  redis = await failFastClient(server.url);
  store = new RedisStore({ redis, keys: new RedisKeys('t') });
});

afterAll(async () => {
  redis?.disconnect();
  await stopAllRedis();
});

beforeEach(async () => {
  await redis.flushall();
  metrics = new Registry();
  clusterMetrics = new ClusterMetrics(metrics);
  reaper = new Reaper({
    store,
    instanceId: 'me',
    expiryMs: 10_000,
    logger: silentLogger,
    metrics: clusterMetrics,
  });
});

async function instanceWithSessions(instance: string, podName: string, count: number): Promise<void> {
  await store.heartbeat(instance, { meshAddress: '10.0.0.1:7946', podName }, 'E1');
  for (let i = 0; i < count; i++) {
    const p = peer(`${instance}-${i}`);
    await store.indexSession(instance, p);
    await store.register(p, instance, 'E1', 60);
  }
}

describe('Reaper on the narrow store', () => {
  it('removes a deleted pod’s sessions and membership, counting both', async () => {
    await instanceWithSessions('dead', 'relay-1', 3);
    expect(await reaper.reap('dead', 'pod_deleted')).toBe(3);
    expect(await store.sessionCount('dead')).toBe(0);
    expect(await store.instanceOfPod('relay-1')).toBeUndefined();
    expect(await metricValue(metrics, 'relay_cluster_reaped_sessions_total')).toBe(3);
    expect(await metricValue(metrics, 'relay_cluster_reaped_instances_total', { cause: 'pod_deleted' })).toBe(
      1,
    );
  });

  it("'expired' on an instance that beat meanwhile removes its sessions but keeps it a member", async () => {
    await instanceWithSessions('slow', 'relay-2', 2);
    expect(await reaper.reap('slow', 'expired')).toBe(2);
    expect(await store.instanceOfPod('relay-2')).toBe('slow');
    expect(await metricValue(metrics, 'relay_cluster_reaped_instances_total')).toBe(0);
  });

  it('leaves the work to the pod holding the reap lock', async () => {
    await instanceWithSessions('dead', 'relay-3', 1);
    expect(await store.lockReap('dead', 'someone-else', 5_000)).toBe(true);
    expect(await reaper.reap('dead', 'pod_deleted')).toBeUndefined();
    expect(await store.sessionCount('dead')).toBe(1);
  });
});

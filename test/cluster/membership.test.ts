import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ClusterMetrics } from '../../src/cluster/cluster-metrics.js';
import { DEFAULT_MEMBERSHIP_TIMING, Membership, type MemberInfo } from '../../src/cluster/membership.js';
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

describe('Membership on the narrow store', () => {
  it('beats, lists the members with their pods, counts their peers, and reaps its pod’s predecessor', async () => {
    await instanceWithSessions('old-process', 'relay-0', 2);
    const seen: ReadonlyMap<string, MemberInfo>[] = [];
    const heartbeats: [string, boolean][] = [];
    const membership = new Membership({
      store,
      instanceId: 'me',
      meshAddress: '[fd00::5]:7946',
      podName: 'relay-0',
      registry: { noteHeartbeat: (epoch, lost) => heartbeats.push([epoch, lost]) },
      reaper,
      logger: silentLogger,
      metrics: clusterMetrics,
      onMembers: (members) => seen.push(members),
      timing: DEFAULT_MEMBERSHIP_TIMING,
    });
    await membership.beat();
    expect(heartbeats).toEqual([['E1', false]]);
    expect(membership.members.get('me')).toEqual({
      instance: 'me',
      meshAddress: '[fd00::5]:7946',
      podName: 'relay-0',
    });
    expect(membership.unhealthyReason()).toBeUndefined();
    // The earlier process of this pod name is reaped in the background.
    await expect.poll(() => store.sessionCount('old-process')).toBe(0);
    expect(await metricValue(metrics, 'relay_cluster_reaped_instances_total', { cause: 'predecessor' })).toBe(
      1,
    );

    await membership.beat();
    expect([...membership.members.keys()]).toEqual(['me']);
    expect(await membership.peerCounts()).toEqual(new Map([['me', 0]]));
    expect(membership.instancesOfPod('relay-0')).toEqual(['me']);
    // Reaped by another pod while alive: the next beat reports the membership as lost.
    await store.forgetMember('me', 0, true);
    await membership.beat();
    expect(heartbeats.at(-1)).toEqual(['E1', true]);
    expect(seen).toHaveLength(3);
    await membership.close();
  });
});

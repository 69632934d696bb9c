import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startClusterInstance, type ClusterInstanceInternals } from '../../src/cluster/cluster-instance.js';
import type { ClusterOptions } from '../../src/config/cluster-options.js';
import { RedisServer, stopAllRedis } from '../support/redis-server.js';
import { EventLog, eventually, metricValue, peer, silentLogger } from './cluster-test-kit.js';

let redis: RedisServer;
const instances: ClusterInstanceInternals[] = [];

function options(podName: string): ClusterOptions {
  return {
    redis: { url: redis.url, keyPrefix: 'nbnode' },
    clusterSecret: 'node-test-secret',
    meshListen: { host: '127.0.0.1', port: 0 },
    meshAdvertise: '127.0.0.1:0',
    podName,
  };
}

async function startInstance(
  podName: string,
): Promise<{ instance: ClusterInstanceInternals; metrics: Registry; events: EventLog }> {
  const metrics = new Registry();
  const started = await startClusterInstance({
    cluster: options(podName),
    logger: silentLogger,
    metrics,
    deliverLocal: () => false,
  });
  instances.push(started);
  return { instance: started, metrics, events: new EventLog(started.registry) };
}

/** Stops an instance the way kill -9 would: no unregister, no goodbye, its Redis entries stay behind. */
async function crash(victim: ClusterInstanceInternals): Promise<void> {
  await victim.membership.close();
  victim.mesh.close();
  victim.redisConnections.command.disconnect();
  victim.redisConnections.subscriber.disconnect();
  instances.splice(instances.indexOf(victim), 1);
}

beforeAll(async () => {
  redis = await RedisServer.start();
});

afterEach(async () => {
  await Promise.all(instances.splice(0).map((n) => n.close()));
});

afterAll(async () => {
  await stopAllRedis();
});

describe('cluster instance', () => {
  it('is ready once connected, and says why not while Redis is away', async () => {
    const { instance: a } = await startInstance('pod-ready');
    expect(a.notReadyReason()).toBeUndefined();
    await redis.kill();
    await eventually(() => a.notReadyReason() !== undefined);
    expect(a.notReadyReason()).toMatch(/redis|subscription/);
    await redis.restart();
    await eventually(() => a.notReadyReason() === undefined, 10_000);
  });

  it('starts while Redis is unreachable (not ready) and becomes ready when Redis appears', async () => {
    await redis.kill();
    const metrics = new Registry();
    const late = await startClusterInstance({
      cluster: options('pod-late'),
      logger: silentLogger,
      metrics,
      deliverLocal: () => false,
      startupTimeoutMs: 300,
    });
    instances.push(late);
    expect(late.notReadyReason()).toBeDefined();
    await expect(late.registry.register(peer('too-early'))).rejects.toThrow(/unavailable/);
    await redis.restart();
    await eventually(() => late.notReadyReason() === undefined, 10_000);
    await late.registry.register(peer('in-time'));
  });

  it('reaps a crashed instance once its heartbeat expires', async () => {
    const { events, metrics } = await startInstance('pod-watcher');
    const { instance: victim } = await startInstance('pod-victim');
    const peers = [peer('victim-1'), peer('victim-2')];
    for (const p of peers) await victim.registry.register(p);
    await events.waitFor(() => peers.every((p) => events.of(p).length === 1));
    await crash(victim);
    // How fast is bench:failover's business; here: announced offline, for the right cause.
    await events.waitFor(
      () => peers.every((p) => events.of(p).at(-1) === `offline:${victim.instanceId}`),
      10_000,
    );
    await expect
      .poll(() => metricValue(metrics, 'relay_cluster_reaped_instances_total', { cause: 'expired' }), {
        timeout: 10_000,
      })
      .toBe(1);
  });

  it('counts peers per live instance, idle instances included', async () => {
    const { instance: a } = await startInstance('pod-count-a');
    const { instance: b } = await startInstance('pod-count-b');
    for (const p of [peer('count-1'), peer('count-2'), peer('count-3')]) await a.registry.register(p);
    await eventually(() => b.membership.members.has(a.instanceId));
    const counts = await b.peersByInstance();
    expect(counts.sort((x, y) => x.podName.localeCompare(y.podName))).toEqual([
      { instance: a.instanceId, podName: 'pod-count-a', peers: 3 },
      { instance: b.instanceId, podName: 'pod-count-b', peers: 0 },
    ]);
  });

  it('reaps the instances of a pod Kubernetes deleted at once, by pod name', async () => {
    const { instance: watcher, events, metrics } = await startInstance('pod-k8s-watcher');
    const { instance: victim } = await startInstance('pod-k8s-victim');
    const peers = [peer('deleted-1'), peer('deleted-2')];
    for (const p of peers) await victim.registry.register(p);
    await events.waitFor(() => peers.every((p) => events.of(p).length === 1));
    await eventually(() => watcher.membership.members.has(victim.instanceId));
    await crash(victim);
    expect(await watcher.reapPod('pod-k8s-victim')).toBe(2);
    await events.waitFor(() => peers.every((p) => events.of(p).at(-1) === `offline:${victim.instanceId}`));
    expect(await metricValue(metrics, 'relay_cluster_reaped_instances_total', { cause: 'pod_deleted' })).toBe(
      1,
    );
    expect(await metricValue(metrics, 'relay_cluster_reaped_instances_total', { cause: 'expired' })).toBe(0);
    // Gone from the member list at once (no wait for its heartbeat to age out).
    expect((await watcher.peersByInstance()).map((i) => i.podName)).toEqual(['pod-k8s-watcher']);
    // Never its own pod.
    expect(await watcher.reapPod('pod-k8s-watcher')).toBe(0);
  });

  it('reaps its predecessor at once when a process starts under the same pod name', async () => {
    const { events } = await startInstance('pod-watcher');
    const { instance: first } = await startInstance('pod-x');
    const peers = [peer('pred-1'), peer('pred-2'), peer('pred-3')];
    for (const p of peers) await first.registry.register(p);
    await events.waitFor(() => peers.every((p) => events.of(p).length === 1));
    await crash(first);
    const { metrics } = await startInstance('pod-x');
    await events.waitFor(
      () => peers.every((p) => events.of(p).at(-1) === `offline:${first.instanceId}`),
      5_000,
    );
    await expect
      .poll(() => metricValue(metrics, 'relay_cluster_reaped_instances_total', { cause: 'predecessor' }), {
        timeout: 10_000,
      })
      .toBe(1);
  });
});

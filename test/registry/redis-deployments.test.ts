import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { RedisOptions } from '../../src/config/cluster-options.js';
import type { PeerEvent } from '../../src/registry/peer-registry.js';
import type { RedisRegistry } from '../../src/registry/redis-registry.js';
import { eventually, peer, startRegistry } from '../cluster/cluster-test-kit.js';
import { RedisClusterSetup, RedisSentinelSetup, stopAllRedis } from '../support/redis-server.js';

const open: RedisRegistry[] = [];

afterAll(async () => {
  await Promise.all(open.splice(0).map((registry) => registry.close()));
  await stopAllRedis();
});

/** The main registry scenario: replace across instances in order, stale unregister no-op, unregister. */
async function mainScenario(options: RedisOptions, label: string): Promise<void> {
  const a = await startRegistry(options, `${label}-A`);
  const b = await startRegistry(options, `${label}-B`);
  const watcher = await startRegistry(options, `${label}-W`);
  open.push(a.registry, b.registry, watcher.registry);
  const peers = Array.from({ length: 20 }, (_, i) => peer(`${label}-peer-${i}`));
  for (const p of peers) {
    const first = await a.registry.register(p);
    const second = await b.registry.register(p);
    expect(await a.registry.unregister(first)).toBe(false);
    expect(await b.registry.unregister(second)).toBe(true);
  }
  // A pod that only listens sees every event, in order.
  await watcher.events.waitFor(() => peers.every((p) => watcher.events.of(p).length === 4));
  for (const p of peers) {
    expect(watcher.events.of(p)).toEqual([
      `online:${label}-A`,
      `offline:${label}-A`,
      `online:${label}-B`,
      `offline:${label}-B`,
    ]);
  }
  // The registering pods apply their own results at once; a pub/sub copy that arrives later
  // (Redis Cluster relays it over the cluster bus) may then be skipped, never reordered.
  for (const log of [a.events, b.events]) {
    await log.waitFor(() => peers.every((p) => log.of(p).at(-1) === `offline:${label}-B`));
    for (const p of peers) expectConsistent(log.all.filter((event) => event.peer === p));
  }
  // A late joiner loads the live registrations from every node.
  const live = await b.registry.register(peers[0]!);
  const c = await startRegistry(options, `${label}-C`);
  open.push(c.registry);
  expect(c.registry.locate(peers[0]!)).toMatchObject({ instance: `${label}-B`, token: live.token });
  expect(c.registry.locate(peers[1]!)).toBeUndefined();
}

/** Sessions follow each other: online/offline alternate, each offline closes the last online, tokens rise. */
function expectConsistent(events: PeerEvent[]): void {
  let online: PeerEvent | undefined;
  let lastToken = 0;
  for (const event of events) {
    if (event.kind === 'online') {
      expect(online).toBeUndefined();
      expect(event.token).toBeGreaterThan(lastToken);
      online = event;
      lastToken = event.token;
    } else {
      expect(online?.token).toBe(event.token);
      online = undefined;
    }
  }
}

describe('Redis deployments', () => {
  it('runs the main scenario on Sentinel and survives a failover (kill -9 of the primary)', async () => {
    const setup = await RedisSentinelSetup.start();
    const options: RedisOptions = {
      sentinels: [{ host: '127.0.0.1', port: setup.sentinelPort }],
      sentinelName: setup.masterName,
      keyPrefix: 'nbsentinel',
    };
    await mainScenario(options, 'sentinel');
    const a = await startRegistry(options, 'failover-A');
    const b = await startRegistry(options, 'failover-B');
    open.push(a.registry, b.registry);
    const before = peer('before-failover');
    const registration = await a.registry.register(before);
    await b.events.waitFor(() => b.events.of(before).length === 1);
    // The replica must hold that registration before the primary dies: WAIT returns once it has
    // acknowledged our write, and replication keeps the registry's earlier writes before ours.
    const sync = new Redis({ host: '127.0.0.1', port: setup.primary.port });
    await sync.set('nbsentinel:replication-check', '1');
    expect(await sync.wait(1, 5_000)).toBe(1);
    sync.disconnect();
    const oldPrimary = setup.primary.port;
    const started = Date.now();
    await setup.primary.kill();
    await eventually(
      async () => ((await setup.currentPrimaryPort()) !== oldPrimary ? true : undefined),
      20_000,
    );
    await eventually(() => a.registry.isHealthy() && b.registry.isHealthy(), 20_000);
    console.log(`sentinel failover: registries healthy again after ${Date.now() - started} ms`);
    expect(b.registry.locate(before)).toMatchObject({ instance: 'failover-A', token: registration.token });
    const after = peer('after-failover');
    await b.registry.register(after);
    await a.events.waitFor(() => a.events.of(after).length === 1);
    expect(await a.registry.unregister(registration)).toBe(true);
    await b.events.waitFor(() => b.events.of(before).length === 2);
    await setup.stop();
  }, 90_000);

  it('runs the main scenario on a Redis Cluster (3 masters)', async () => {
    const setup = await RedisClusterSetup.start(3);
    await mainScenario({ clusterNodes: setup.hostPorts, keyPrefix: 'nbcluster' }, 'cluster');
    await setup.stop();
  }, 90_000);
});

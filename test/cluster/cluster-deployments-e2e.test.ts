import { afterEach, describe, expect, it } from 'vitest';
import { MessageType } from '../../src/protocol/constants.js';
import type { RelayTestClient } from '../support/relay-test-client.js';
import { redisCli, RedisClusterSetup, RedisSentinelSetup, stopAllRedis } from '../support/redis-server.js';
import { eventually } from './cluster-test-kit.js';
import {
  awaitOnline,
  connectPeer,
  expectPeerState,
  expectTransport,
  startPod,
  watchPeer,
  type Pod,
} from './cluster-pods.js';

/** The main cluster scenario on three relay processes over Sentinel and over Redis Cluster. */
const pods: Pod[] = [];
const clients: RelayTestClient[] = [];

afterEach(async (context) => {
  if (context.task.result?.state === 'fail' && process.env.TEST_DUMP_PODS) {
    for (const pod of pods) console.log(`==== ${pod.name}\n${pod.process.output}`);
  }
  for (const client of clients.splice(0)) client.terminate();
  await Promise.all(pods.splice(0).map((pod) => pod.process.stop()));
  await stopAllRedis();
});

async function startPods(env: Record<string, string>): Promise<[Pod, Pod, Pod]> {
  const started: Pod[] = [];
  for (const name of ['pod-1', 'pod-2', 'pod-3']) {
    const pod = await startPod(name, env);
    pods.push(pod);
    started.push(pod);
  }
  return started as [Pod, Pod, Pod];
}

async function peerOn(pod: Pod, identifier: string): Promise<RelayTestClient> {
  const client = await connectPeer(pod, identifier);
  clients.push(client);
  return client;
}

/** Cross-pod transport both ways, a cross-pod reconnect announced offline-then-online, and a disconnect. */
async function mainScenario([pod1, pod2, pod3]: [Pod, Pod, Pod], label: string): Promise<void> {
  const alice = await peerOn(pod1, `${label}-alice`);
  const bob = await peerOn(pod2, `${label}-bob`);
  await watchPeer(alice, bob);
  await awaitOnline(bob, alice);
  alice.sendTransport(bob.peerId, Buffer.from('to bob'));
  await expectTransport(bob, alice, 'to bob');
  bob.sendTransport(alice.peerId, Buffer.from('to alice'));
  await expectTransport(alice, bob, 'to alice');

  if (process.env.TEST_DUMP_PODS) console.log(`step ${label}: transport done`);
  const bobAgain = await peerOn(pod3, `${label}-bob`);
  await expectPeerState(alice, MessageType.PeersWentOffline, bobAgain);
  await expectPeerState(alice, MessageType.PeersOnline, bobAgain);
  if (process.env.TEST_DUMP_PODS) console.log(`step ${label}: reconnect seen`);
  alice.sendTransport(bobAgain.peerId, Buffer.from('to the new bob'));
  await expectTransport(bobAgain, alice, 'to the new bob');
  bobAgain.close();
  await expectPeerState(alice, MessageType.PeersWentOffline, bobAgain);
}

describe('cluster on other Redis deployments', () => {
  it('runs the main scenario over Sentinel and keeps working across a failover', async () => {
    const setup = await RedisSentinelSetup.start();
    const clusterPods = await startPods({
      NB_REDIS_SENTINELS: `127.0.0.1:${setup.sentinelPort}`,
      NB_REDIS_SENTINEL_NAME: setup.masterName,
    });
    await mainScenario(clusterPods, 'sentinel');

    const [pod1, pod2] = clusterPods;
    const carol = await peerOn(pod1, 'sentinel-carol');
    const dave = await peerOn(pod2, 'sentinel-dave');
    await awaitOnline(carol, dave);
    // The replica has everything the primary wrote so far (replication offsets), so the failover loses nothing.
    const offset = async (port: number): Promise<number> =>
      Number(/master_repl_offset:(\d+)/.exec(await redisCli(port, ['INFO', 'replication']))?.[1] ?? NaN);
    const written = await offset(setup.primary.port);
    await eventually(async () => (await offset(setup.replica.port)) >= written, 10_000, 'replica caught up');
    const oldPrimary = setup.primary.port;
    const killed = Date.now();
    await setup.primary.kill();
    await eventually(
      async () => ((await setup.currentPrimaryPort()) !== oldPrimary ? true : undefined),
      20_000,
    );
    await eventually(async () => {
      const ready = await Promise.all(clusterPods.map((pod) => pod.process.readiness()));
      return ready.every((status) => status === 200) ? true : undefined;
    }, 20_000);
    console.log(`sentinel failover: all pods ready ${Date.now() - killed} ms after the primary was killed`);
    // Routes survived; new registrations work on the new primary.
    carol.sendTransport(dave.peerId, Buffer.from('after failover'));
    await expectTransport(dave, carol, 'after failover');
    const erin = await peerOn(clusterPods[2], 'sentinel-erin');
    await awaitOnline(carol, erin);
    dave.close();
    await expectPeerState(carol, MessageType.PeersWentOffline, dave);
    expect(carol.pending()).toBe(0);
    await setup.stop();
  }, 120_000);

  it('runs the main scenario over a Redis Cluster of three masters', async () => {
    const setup = await RedisClusterSetup.start(3);
    const clusterPods = await startPods({
      NB_REDIS_CLUSTER_NODES: setup.hostPorts.map(({ host, port }) => `${host}:${port}`).join(','),
    });
    for (let round = 0; round < 3; round++) await mainScenario(clusterPods, `cluster-${round}`);
    await setup.stop();
  }, 120_000);
});
